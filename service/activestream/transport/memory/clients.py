"""The memory broker's clients: consumer (a group member), producer, reader and admin.

Each one implements its ``transport.base`` contract on a ``MemoryBroker`` (``memory.broker``), as the
package docstring describes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from activestream.transport.base import (
    Admin,
    Consumer,
    Message,
    Producer,
    Reader,
    RebalanceCallback,
    TopicPartition,
)
from activestream.transport.errors import BrokerUnavailable, DeliveryError, TransportError

if TYPE_CHECKING:  # the broker imports this module to hand the clients out
    from activestream.transport.memory.broker import MemoryBroker

__all__ = ["BufferedRecord", "MemoryAdmin", "MemoryConsumer", "MemoryProducer", "MemoryReader"]

log = logging.getLogger(__name__)


class MemoryConsumer(Consumer):
    """A member of a ``MemoryBroker`` consumer group (see the module docstring)."""

    def __init__(self, broker: MemoryBroker, group_id: str) -> None:
        self._broker = broker
        self.group_id = group_id
        self._topics: frozenset[str] = frozenset()
        self._on_assign: RebalanceCallback | None = None
        self._on_revoke: RebalanceCallback | None = None
        self._on_lost: RebalanceCallback | None = None
        self._generation = -1  # the group generation this member's assignment belongs to
        self._assignment: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._cursor = 0  # rotates the partition polled first, so no partition starves
        self._member_id: str | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryConsumer(group_id={self.group_id!r}, assignment={sorted(self._assignment)})"

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        self._check_open()
        if isinstance(topics, str):
            raise TypeError("topics must be a sequence of topic names, not a string")
        self._topics = frozenset(topics)
        self._on_assign, self._on_revoke, self._on_lost = on_assign, on_revoke, on_lost or on_revoke
        self._join()

    def _join(self) -> None:
        group = self._broker._group(self.group_id)
        if self not in group.members:
            group.members.append(self)
            self._member_id = f"{self.group_id}-member-{next(self._broker._member_ids)}"
        self._broker._bump(group)

    def member_id(self) -> str | None:
        return self._member_id

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        """Returns at once (never waits for ``timeout_s``)."""
        self._check_open()
        if max_records <= 0:
            raise ValueError("max_records must be positive")
        if not self._topics:
            raise RuntimeError("poll() before subscribe()")
        if not self._rebalance():
            return []
        owned = sorted(self._assignment)
        if not owned:
            return []
        start = self._cursor % len(owned)
        self._cursor += 1
        batch: list[Message] = []
        for tp in owned[start:] + owned[:start]:
            log_ = self._broker._logs[tp.topic][tp.partition]
            position = self._positions[tp]
            taken = log_[position : position + max_records - len(batch)]
            batch.extend(taken)
            self._positions[tp] = position + len(taken)
            if len(batch) >= max_records:
                break
        return batch

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._check_open()
        for tp, offset in offsets.items():
            if not isinstance(offset, int) or offset < 0:
                raise ValueError(f"invalid offset {offset!r} for {tp}")
            if tp not in self._assignment or self._broker._groups[self.group_id].lost:
                raise TransportError(f"cannot commit {tp}: not assigned to this member (rebalanced?)")
        self._broker._groups[self.group_id].committed.update(
            {TopicPartition(tp.topic, tp.partition): offset for tp, offset in offsets.items()}
        )

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if not isinstance(offset, int) or offset < 0:
            raise ValueError("offset must be an int >= 0")
        if tp not in self._assignment:
            raise ValueError(f"unassigned partition {tp}")
        self._positions[tp] = offset

    def committed(self, tp: TopicPartition) -> int | None:
        group = self._broker._groups.get(self.group_id)
        return group.committed.get(tp) if group else None

    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    def lag(self) -> dict[TopicPartition, int]:
        return {
            tp: max(0, self._broker.end_offset(tp) - self._positions[tp])
            for tp in self._assignment
            if tp in self._positions
        }

    def close(self) -> None:
        """Revoke (``on_revoke`` may still commit) and leave the group."""
        if self._closed:
            return
        group = self._broker._groups.get(self.group_id)
        error: BaseException | None = None
        if self._assignment and group is not None:
            callback = self._on_lost if group.lost and self._generation != group.generation else None
            try:
                self._call(callback or self._on_revoke, self._assignment)
            except BaseException as exc:
                error = exc
        self._closed = True
        self._assignment, self._positions = set(), {}
        if group is not None and self in group.members:
            group.members.remove(self)
            if group.members:
                self._broker._bump(group)
        if error is not None:
            raise error

    # Internals ---------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("consumer is closed")

    @staticmethod
    def _call(callback: RebalanceCallback | None, partitions: set[TopicPartition]) -> None:
        if callback is not None:
            callback(set(partitions))

    def _rebalance(self) -> bool:
        """Bring this member up to the group's generation; False while waiting for other members."""
        group = self._broker._groups[self.group_id]
        if self not in group.members:  # removed by an admin: what it held is lost; it joins again
            if self._assignment:
                self._call(self._on_lost, self._assignment)
                self._assignment, self._positions = set(), {}
            self._join()
        if self._generation == group.generation:
            return True
        if self._assignment:
            self._call(self._on_lost if group.lost else self._on_revoke, self._assignment)
            self._assignment, self._positions = set(), {}
        if any(m._assignment and m._generation != group.generation for m in group.members if m is not self):
            return False  # someone still holds partitions from the previous generation
        target = group.target(self._broker)
        self._generation = group.generation
        group.lost = False
        self._assignment = set(target[self])
        self._positions = {tp: group.committed.get(tp, 0) for tp in self._assignment}
        self._call(self._on_assign, self._assignment)
        return True


@dataclass(frozen=True, slots=True)
class BufferedRecord:
    """A produced record waiting for ``flush``."""

    value: bytes
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class MemoryProducer(Producer):
    """Buffers records until ``flush`` (see the module docstring)."""

    def __init__(self, broker: MemoryBroker, *, fail_flush: bool = False) -> None:
        self._broker = broker
        self.fail_flush = fail_flush
        self._pending: list[tuple[str, BufferedRecord]] = []
        self._round_robin: dict[str, int] = {}
        self._closed = False

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Iterable[tuple[str, bytes]] = (),
    ) -> None:
        if self._closed:
            raise TransportError("producer is closed")
        if not isinstance(value, bytes | bytearray) or not isinstance(key, bytes | bytearray | None):
            raise TypeError("value must be bytes and key bytes or None")
        record = BufferedRecord(bytes(value), None if key is None else bytes(key), tuple(headers))
        if not all(isinstance(k, str) and isinstance(v, bytes) for k, v in record.headers):
            raise TypeError("headers must be (str, bytes) pairs")
        size = len(record.value) + len(record.key or b"") + sum(len(k) + len(v) for k, v in record.headers)
        if size > self._broker.max_message_bytes:
            raise DeliveryError(
                [(topic, ValueError(f"record of {size} bytes exceeds {self._broker.max_message_bytes}"))]
            )
        self._pending.append((topic, record))

    def flush(self, timeout_s: float) -> None:
        pending, self._pending = self._pending, []
        if self.fail_flush and pending:
            raise DeliveryError(
                [(topic, TransportError("injected delivery failure")) for topic, _ in pending]
            )
        for topic, record in pending:
            partition = None
            if record.key is None:
                partition = self._round_robin.get(topic, 0)
                self._round_robin[topic] = partition + 1
            self._broker._append(topic, partition, record)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush(0.0)
        except DeliveryError as exc:
            log.error("producer closed with undelivered records: %s", exc)
        self._closed = True


class MemoryReader(Reader):
    """Reads one partition from an offset, in no group; a topic that does not exist yet reads as empty.

    >>> from activestream.transport.memory import MemoryBroker
    >>> broker = MemoryBroker()
    >>> producer = broker.producer()
    >>> for i in range(3):
    ...     producer.produce("log", b"r%d" % i)
    >>> producer.flush(1.0)
    >>> reader = broker.reader()
    >>> reader.assign(TopicPartition("log", 0), 1)
    >>> [(m.offset, m.value) for m in reader.poll(0.0, max_records=10)], reader.poll(0.0, max_records=10)
    ([(1, b'r1'), (2, b'r2')], [])
    """

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self._tp: TopicPartition | None = None
        self._position = 0
        self._closed = False

    def assign(self, tp: TopicPartition, offset: int) -> None:
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        self._tp, self._position = tp, offset

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        """Returns at once (never waits for ``timeout_s``)."""
        if self._closed:
            raise TransportError("reader is closed")
        if self._tp is None:
            raise RuntimeError("poll() before assign()")
        logs = self._broker._logs.get(self._tp.topic)
        if logs is None or self._tp.partition >= len(logs):
            return []
        taken = logs[self._tp.partition][self._position : self._position + max_records]
        self._position += len(taken)
        return taken

    def end_offset(self, tp: TopicPartition) -> int:
        logs = self._broker._logs.get(tp.topic)
        return len(logs[tp.partition]) if logs is not None and tp.partition < len(logs) else 0

    def close(self) -> None:
        self._closed = True


class MemoryAdmin(Admin):
    """Creates topics on the ``MemoryBroker``; ``reachable`` can be switched off to simulate an outage."""

    def __init__(self, broker: MemoryBroker, *, reachable: bool = True) -> None:
        self._broker = broker
        self.reachable = reachable

    def ensure_topics(self, topics: Sequence[str], partitions: int = 1) -> None:
        if isinstance(topics, str):
            raise TypeError("topics must be a sequence of topic names, not a string")
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        if not self.reachable:
            raise BrokerUnavailable("memory broker marked unreachable")
        for topic in topics:
            self._broker._create_topic(topic, partitions)

    def missing_topics(self, topics: Sequence[str]) -> list[str]:
        if not self.reachable:
            raise BrokerUnavailable("memory broker marked unreachable")
        return [topic for topic in dict.fromkeys(topics) if topic not in self._broker._logs]

    def is_reachable(self, timeout_s: float) -> bool:
        return self.reachable

    def partition_count(self, topic: str) -> int | None:
        if not self.reachable:
            raise BrokerUnavailable("memory broker marked unreachable")
        logs = self._broker._logs.get(topic)
        return None if logs is None else len(logs)

    def remove_members(self, group_id: str, member_ids: Sequence[str]) -> dict[str, str | None]:
        if not self.reachable:
            raise BrokerUnavailable("memory broker marked unreachable")
        group = self._broker._groups.get(group_id)
        members = {m.member_id(): m for m in group.members} if group else {}
        answers: dict[str, str | None] = {}
        for member_id in member_ids:
            member = members.pop(member_id, None)
            if member is None or group is None:
                answers[member_id] = "UnknownMemberIdError"
                continue
            group.members.remove(member)
            self._broker._bump(group)
            answers[member_id] = None
        return answers

    def close(self) -> None:
        pass
