"""Where the loop stands in each partition: the next offset, the replay after a restart, held labels.

Offsets follow Kafka's convention (the next offset to read). A partition is *replaying* from a restored
checkpoint's offset up to the furthest of the group's committed offset and the journal's last step in
it: the messages in between were handled before the restart. While any events partition replays, a
label whose request is unknown may answer an event not replayed yet: it is held back (``deferred``)
and its offset is not committed past until it is joined.

>>> tp = TopicPartition("events", 0)
>>> partitions = Partitions()
>>> partitions.restore({tp: 5}, journal_ends={tp: 9})
>>> partitions.assign(tp, committed=7)  # covered: seek to 5, replay up to 9
5
>>> partitions.replaying, partitions.advance(tp, 7), partitions.advance(tp, 8), partitions.replaying
(True, False, True, False)

The journal is synced before every commit, so it reaches every offset this process committed: an offset
committed beyond both the checkpoint and the journal was committed by another replica, which decided those
messages while it held the partition. Replaying them would decide them a second time (and ask again), so
the partition starts at the group's offset instead; this replica's model then lacks what the other learned
there (``jumps`` records it for the log):

>>> other = TopicPartition("events", 1)
>>> partitions.restore({other: 5}, journal_ends={other: 9})
>>> partitions.assign(other, committed=40), partitions.replaying, partitions.jumps[other]
(40, False, (9, 40))
"""

from __future__ import annotations

from collections.abc import Iterable

from activestream.transport.base import Message, TopicPartition

__all__ = ["Partitions"]


class Partitions:
    """Positions, assignment, replay ends and deferred labels of the partitions the loop handles."""

    def __init__(self) -> None:
        #: Next offset to process, per partition the state covers.
        self.positions: dict[TopicPartition, int] = {}
        self.assigned: set[TopicPartition] = set()
        #: Partitions being replayed, and the offset up to which they replay.
        self.replay_end: dict[TopicPartition, int] = {}
        #: Labels held back until the events they answer are replayed.
        self.deferred: list[Message] = []
        #: Partitions that started at the group's offset, past this process's state: (reach, committed).
        self.jumps: dict[TopicPartition, tuple[int, int]] = {}
        self._journal_ends: dict[TopicPartition, int] = {}

    @property
    def replaying(self) -> bool:
        """Whether an assigned partition is behind where it was before the restart."""
        return bool(self.replay_end)

    @property
    def settled(self) -> bool:
        """No partition replays, nor will (every partition the journal went through was assigned)."""
        return not self.replay_end and not self._journal_ends

    @property
    def replay_targets(self) -> dict[TopicPartition, int]:
        """How far each partition still has to replay, assigned or not yet: what a checkpoint taken now
        must carry into the next journal (a partition not assigned yet keeps the journal's end)."""
        targets = dict(self._journal_ends)
        for tp, end in self.replay_end.items():
            targets[tp] = max(end, targets.get(tp, 0))
        return targets

    def restore(self, positions: dict[TopicPartition, int], journal_ends: dict[TopicPartition, int]) -> None:
        """Start from a checkpoint's offsets and how far the journal's steps went after it."""
        self.positions, self._journal_ends = dict(positions), dict(journal_ends)

    def assign(self, tp: TopicPartition, committed: int | None) -> int | None:
        """Take ``tp``: the offset to seek to when the state covers it (or the group's ``committed`` offset
        when another replica went past the state: ``jumps``), else ``None`` (it starts at the group's
        ``committed`` offset, which the next checkpoint must cover)."""
        self.assigned.add(tp)
        position = self.positions.get(tp)
        journal_end = self._journal_ends.pop(tp, 0)
        reach = max(position or 0, journal_end)
        if position is not None and committed is not None and committed > reach:
            # Another replica processed [reach, committed): never rewind past it.
            self.jumps[tp] = (reach, committed)
            self.positions[tp] = committed
            return committed
        start = position if position is not None else (committed or 0)
        self.positions[tp] = start
        # Replayed up to where the group committed, or the journal went, whichever is further.
        end = max(committed or 0, journal_end)
        if end > start:
            self.replay_end[tp] = end
        return position

    def advance(self, tp: TopicPartition, offset: int) -> bool:
        """``offset`` of ``tp`` was handled; true when that ended the last replay."""
        self.positions[tp] = offset + 1
        end = self.replay_end.get(tp)
        return end is not None and offset + 1 >= end and self.caught_up(tp)

    def caught_up(self, tp: TopicPartition) -> bool:
        """``tp`` replays no more (past its end, at the end of the log, or gone); true when that ended
        the last replay."""
        if self.replay_end.pop(tp, None) is None:
            return False
        return self.settled  # (a partition not assigned yet may replay)

    def safe_offset(self, tp: TopicPartition, held: Iterable[Message] = ()) -> int:
        """The next offset to read, but never past a label held back or a message still ``held``."""
        offsets = [m.offset for m in (*self.deferred, *held) if m.topic_partition == tp]
        return min([self.positions[tp], *offsets])

    def forget(self, partitions: set[TopicPartition], held: Iterable[Message] = ()) -> bool:
        """``partitions`` went away: their positions fall back to what is held (read again when they
        come back); true when that ended the last replay."""
        held = list(held)
        for tp in partitions & self.positions.keys():
            self.positions[tp] = self.safe_offset(tp, held)
        self.deferred = [m for m in self.deferred if m.topic_partition not in partitions]
        ended = [self.caught_up(tp) for tp in partitions & self.replay_end.keys()]
        self.assigned -= partitions
        return any(ended)
