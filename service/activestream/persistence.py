"""The engine's state on disk: the checkpoint, and the journal of the steps taken since it.

A checkpoint holds the engine's state and the offsets it covers (:mod:`activestream.checkpoint`); the
journal beside it (:mod:`activestream.journal`) holds every step after it. Each checkpoint starts a new
journal *generation*, whose number the checkpoint records: a journal of another generation holds nothing
the checkpoint lacks. Restart = ``restore`` (state and offsets) + ``recover`` (the steps since).

One process writes a checkpoint path: ``Persistence`` holds its lock (:mod:`activestream.ownership`) from
construction to ``close``, and a second process given the same path is refused with one line. Holding the
lock, it clears the temp files that crashed writes left beside the checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable
from typing import NamedTuple

from activestream.checkpoint import (
    CheckpointError,
    CheckpointState,
    load_checkpoint,
    remove_stale_temps,
    save_checkpoint,
)
from activestream.config import Settings
from activestream.engine import Engine, Record, Step
from activestream.journal import Journal
from activestream.ownership import CheckpointLock
from activestream.transport.base import TopicPartition

__all__ = ["Persistence", "Recovered"]

log = logging.getLogger(__name__)


class Recovered(NamedTuple):
    """What the journal gave back beside the engine's decisions: the records to produce again, the
    dead letters published already (topic, partition, offset), and how far each partition went."""

    republish: list[Record]
    dead_lettered: set[tuple[str, int, int]]
    ends: dict[TopicPartition, int]


class Persistence:
    """Saves and restores an engine (see the module docstring)."""

    def __init__(self, settings: Settings, engine: Engine):
        self.path = settings.checkpoint_path
        self._lock = CheckpointLock.acquire(self.path)  # raises CheckpointInUse
        for temp in remove_stale_temps(self.path):
            log.info("removed a temp file a crashed write left", extra={"path": str(temp)})
        self.engine = engine
        self.journal = Journal(Journal.path_for(self.path))
        self._generation = 0

    def restore(
        self, fallback: Callable[[], CheckpointState | None] | None = None
    ) -> dict[TopicPartition, int] | None:
        """Give the engine the checkpoint's state; return the offsets it covers (``None``: no checkpoint).

        With no checkpoint, ``fallback`` may give a state to start from (the group's snapshot: the
        journal, of generation 0 then, still applies). Raises ``CheckpointError`` for a damaged checkpoint:
        starting afresh would throw the model away.
        """
        state = load_checkpoint(self.path)
        from_snapshot = False
        if state is None and fallback is not None:
            state = fallback()
            from_snapshot = state is not None
        if state is None:
            log.info("no checkpoint: starting from scratch", extra={"path": str(self.path)})
            return None
        self.engine.restore(state)
        if from_snapshot:
            log.info("no checkpoint: starting from the group's snapshot", extra={"path": str(self.path)})
            return dict(state.offsets)
        self._generation = int(state.counters.get("journal", 0))
        self.engine.metrics.checkpoint_saved(state.created_at_ms / 1000)
        log.info(
            "checkpoint restored",
            extra={"model_version": self.engine.model_version, "partitions": len(state.offsets)},
        )
        return dict(state.offsets)

    def recover(self) -> Recovered:
        """Give the engine the steps journaled after the checkpoint."""
        steps = self.journal.recover(self._generation)
        republish = self.engine.recover(steps)
        dead = {source for step in steps if step.published for source in step.dead_letters}
        ends: dict[TopicPartition, int] = {}
        for step in steps:  # how far each partition went: its replay goes there at least
            for topic, partition, offset in step.positions:
                tp = TopicPartition(topic, partition)
                ends[tp] = max(offset, ends.get(tp, 0))
        return Recovered(republish, dead, ends)

    def append(self, step: Step, positions: dict[TopicPartition, int]) -> None:
        """Journal a batch's step with the positions after it, before its records are produced."""
        if step:
            step = dataclasses.replace(step, positions=_triples(positions))
        self.journal.append(step)  # raises CheckpointError: nothing of this batch was published

    def mark_published(self) -> None:
        self.journal.mark_published()

    def sync(self) -> None:
        """Make the journal durable up to now: call before committing offsets past it."""
        self.journal.sync()

    def save(
        self, offsets: dict[TopicPartition, int], replaying: dict[TopicPartition, int], now_ms: int
    ) -> int:
        """Checkpoint the engine covering ``offsets`` and start a new journal; return the bytes written,
        0 when the checkpoint could not be written (logged; the previous one stands).

        ``replaying``: the partitions still being replayed and up to where, carried into the new journal
        with the decisions not replayed yet. Raises ``CheckpointError`` when the new journal cannot be
        started (appending to the old one would lose steps at the next restart).
        """
        generation = secrets.randbits(62) + 1
        state = self.engine.snapshot(offsets, now_ms, {"journal": generation})
        try:
            size = save_checkpoint(self.path, state)
        except CheckpointError:
            return 0
        self._generation = generation
        carried = dataclasses.replace(self.engine.carried(), positions=_triples(replaying))
        self.journal.reset(generation, [carried])
        self.engine.metrics.checkpoint_saved(now_ms / 1000)
        log.info("checkpoint saved", extra={"bytes": size, "model_version": self.engine.model_version})
        return size

    def close(self) -> None:
        self.journal.close()
        self._lock.release()


def _triples(offsets: dict[TopicPartition, int]) -> tuple[tuple[str, int, int], ...]:
    return tuple((tp.topic, tp.partition, offset) for tp, offset in offsets.items())
