"""Taking over from a killed predecessor: its group member is removed before this process joins.

A consumer killed without leaving its group (SIGKILL, the OOM killer, a lost node) stays a member until
its session times out, and the coordinator waits for it before it gives its partitions to anyone: a
restarted service is not ready for a session timeout or more (on the embedded broker about 1.75x the
session: 11.4 s at the default 6 s, ``benchmarks/group_takeover.py``).

The restarted process knows who that member was. Each assignment records this process's member id in
``<checkpoint>.member``, and holding the checkpoint's lock (:mod:`activestream.ownership`) proves that
the process which wrote it is gone: one live process per checkpoint path. So before joining, the new
process asks the coordinator to remove that member (a ``LeaveGroup`` on its behalf, as Java's
``Admin.removeMembersFromConsumerGroup`` sends), and the group rebalances at once instead of waiting
out the dead member's session.

Nothing is removed when there is no record (a first start, a new volume), when the record names
another group, when static membership is configured (``ACTIVESTREAM_GROUP_INSTANCE_ID``: the broker
hands a static member's partitions to its successor by the instance id), or when this process does not
hold the checkpoint's lock. A predecessor that left cleanly (SIGTERM) is no longer a member: the
coordinator answers ``UnknownMemberIdError``, and joining goes on as usual. A failed removal is a
warning, never a reason not to start: the group then waits out the session as before.

>>> import tempfile
>>> from pathlib import Path
>>> record = MemberRecord(Path(tempfile.mkdtemp()) / "state.ckpt")
>>> record.save("activestream", "member-1")
>>> record.load("activestream"), record.load("another-group")
('member-1', None)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from activestream.checkpoint import temp_path_for
from activestream.ownership import CheckpointLock
from activestream.transport.base import Admin, Consumer

__all__ = ["MemberRecord", "Takeover"]

log = logging.getLogger(__name__)


class MemberRecord:
    """This process's member id per consumer group, kept beside the checkpoint (``<checkpoint>.member``)."""

    def __init__(self, checkpoint_path: str | Path) -> None:
        checkpoint_path = Path(checkpoint_path)
        self.path = checkpoint_path.with_name(f"{checkpoint_path.name}.member")

    def _read(self) -> dict[str, str]:
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(record, dict):
            return {}
        return {group: member for group, member in record.items() if isinstance(member, str) and member}

    def load(self, group_id: str) -> str | None:
        """The member id recorded for ``group_id``; ``None`` without a readable record of it."""
        return self._read().get(group_id)

    def save(self, group_id: str, member_id: str) -> None:
        """Record ``group_id``'s member id atomically (no fsync: a record lost in a crash only costs the
        slow path)."""
        record = {**self._read(), group_id: member_id}
        temp = temp_path_for(self.path)
        temp.write_text(json.dumps(record))
        os.replace(temp, self.path)


class Takeover:
    """Removes the predecessor's member before joining (``before_join``) and records this process's own
    on every assignment (``joined``)."""

    def __init__(
        self,
        consumer: Consumer,
        admin: Admin | None,
        checkpoint_path: str | Path,
        group_id: str,
        group_instance_id: str | None,
    ) -> None:
        self._consumer, self._admin, self._group_id = consumer, admin, group_id
        self._checkpoint_path = Path(checkpoint_path)
        self._record = MemberRecord(checkpoint_path)
        self._static = bool(group_instance_id)
        self._recorded: str | None = None

    def before_join(self) -> str | None:
        """Remove the member the record names, when it is safe (see the module docstring); return the
        member id removed, or ``None``."""
        if self._static or self._admin is None or not CheckpointLock.held_here(self._checkpoint_path):
            return None
        member_id = self._record.load(self._group_id)
        if member_id is None:
            return None
        try:
            outcome = self._admin.remove_members(self._group_id, [member_id]).get(member_id)
        except Exception as error:  # the slow path still works: the group waits out the session
            log.warning(
                "could not remove the previous process's group member; joining waits out its session",
                extra={"group_id": self._group_id, "member_id": member_id, "error": repr(error)},
            )
            return None
        if outcome is not None:
            log.info(
                "the previous process's group member is gone already",
                extra={"group_id": self._group_id, "member_id": member_id, "answer": outcome},
            )
            return None
        log.info(
            "removed the previous process's group member: its partitions are reassigned at once",
            extra={"group_id": self._group_id, "member_id": member_id},
        )
        return member_id

    def joined(self) -> None:
        """Record this member's id when it changed (called on every assignment)."""
        member_id = self._consumer.member_id()
        if member_id is None or member_id == self._recorded:
            return
        try:
            self._record.save(self._group_id, member_id)
        except OSError as error:  # only the next restart's speed depends on it
            log.warning("could not record the group member id", extra={"error": repr(error)})
            return
        self._recorded = member_id
