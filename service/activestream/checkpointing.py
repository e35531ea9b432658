"""When the loop checkpoints and what it commits (``Checkpointing``), and the restore that starts it.

A checkpoint and a commit never go past a label held back during a replay or an event held in a batch
window: those are read again after a restart. A checkpoint is taken only when it would hold something new
and every record produced so far is flushed (``consistent``); otherwise the previous one is right. The
loop's order around them (journal → produce → flush → mark published → checkpoint → commit) stays in
:mod:`activestream.service`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from activestream.checkpoint import CheckpointState
from activestream.config import Settings
from activestream.deadletters import DeadLetters
from activestream.engine import Engine
from activestream.engine.step import Record
from activestream.partitions import Partitions
from activestream.persistence import Persistence
from activestream.transport.base import Consumer, TopicPartition
from activestream.transport.errors import TransportError

__all__ = ["Checkpointing"]

# The loop's logger: its lines keep the name they had when this was part of service.py (JSON logs carry it).
log = logging.getLogger("activestream.service")


class Checkpointing:
    """Checkpoints and commits for the loop, over the partitions' positions (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        consumer: Consumer,
        partitions: Partitions,
        store: Persistence,
    ):
        self._settings, self._engine, self._consumer = settings, engine, consumer
        self._partitions, self._store = partitions, store
        self.dirty = False  # processed messages since the last checkpoint
        self.uncovered = False  # partitions assigned that no checkpoint covers yet
        self.consistent = True  # every record produced so far is flushed (false while a batch runs)
        self.closed = False  # the loop is closing: a revoke neither checkpoints nor commits any more
        self.last_ms = 0

    def due(self, now_ms: int) -> bool:
        """Whether the interval passed, or an assigned partition is not covered yet."""
        return self.uncovered or now_ms - self.last_ms >= self._settings.checkpoint_interval_seconds * 1000

    def safe_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The offsets to commit or checkpoint: never past a held-back label or an event in a batch window."""
        held = list(self._engine.held())
        positions = self._partitions.positions
        return {tp: self._partitions.safe_offset(tp, held) for tp in partitions if tp in positions}  # type: ignore[arg-type]

    def commit(self, partitions: Iterable[TopicPartition]) -> None:
        offsets = self.safe_offsets(partitions)
        if not offsets:
            return
        self._store.sync()  # raises CheckpointError: nothing committed past what the journal holds
        try:
            self._consumer.commit(offsets)
        except TransportError as error:  # the checkpoint protects the model; the next commit catches up
            log.warning("commit failed", extra={"error": str(error)})

    def checkpoint(self, now_ms: int) -> None:
        self.last_ms = now_ms  # also after a failure: retry at the next interval, not every batch
        if not ((self.dirty or self.uncovered) and self.consistent) or self._partitions.deferred:
            return  # nothing new, records not flushed, or a replay not settled yet: the old one is right
        offsets = self.safe_offsets(self._partitions.positions)  # held events are replayed
        if self._store.save(offsets, self._partitions.replay_targets, now_ms):
            self.dirty = self.uncovered = False

    def restore(
        self, dead_letters: DeadLetters, fallback: Callable[[], CheckpointState | None] | None = None
    ) -> list[Record]:
        """Restore the checkpoint (with none: ``fallback``'s state, the group's snapshot) and the journal;
        return the records that may never have been published (to produce again; the loop then sets
        ``dirty``: the next checkpoint must cover what the journal put back in the pending store)."""
        positions = self._store.restore(fallback) or {}
        positions.pop(self._engine.training_partition, None)  # the engine's own (not a group's partition)
        recovered = self._store.recover()
        self._partitions.restore(positions, recovered.ends)
        dead_letters.published_before = recovered.dead_lettered
        return recovered.republish
