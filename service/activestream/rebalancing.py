"""The loop's rebalance callbacks: partitions assigned, revoked or lost (``Rebalancing``).

They run inside the consumer's ``poll()`` (or ``close()``), between the loop's batches, never in the
middle of one. An assigned partition resumes where the loop's state stands; a revoked one is checkpointed
and committed first when every record produced so far is flushed; a lost one can no longer be committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from activestream.checkpointing import Checkpointing
from activestream.engine import Engine
from activestream.health import Health
from activestream.partitions import Partitions
from activestream.transport.base import Consumer, TopicPartition

__all__ = ["Rebalancing"]

# The loop's logger: its lines keep the name they had when this was part of service.py (JSON logs carry it).
log = logging.getLogger("activestream.service")


class Rebalancing:
    """``on_assign``, ``on_revoke`` and ``on_lost`` for ``Consumer.subscribe``.

    ``end_replay`` is the loop's: called when forgetting partitions leaves none being replayed;
    ``joined`` is called on every assignment (``Takeover.joined`` records the member id).
    """

    def __init__(
        self,
        consumer: Consumer,
        engine: Engine,
        partitions: Partitions,
        checkpoints: Checkpointing,
        health: Health,
        clock_ms: Callable[[], int],
        end_replay: Callable[[], None],
        joined: Callable[[], None] = lambda: None,
    ):
        self._consumer, self._engine, self._partitions = consumer, engine, partitions
        self._checkpoints, self._health, self._metrics = checkpoints, health, engine.metrics
        self._clock_ms, self._end_replay, self._joined = clock_ms, end_replay, joined

    def on_assign(self, partitions: set[TopicPartition]) -> None:
        self._joined()
        jumped = False
        for tp in partitions - self._partitions.assigned:
            position = self._partitions.assign(tp, self._consumer.committed(tp))
            if position is None:
                # Not covered by our state: it starts at the group's offset, and the next checkpoint must
                # cover that before a commit goes past it. Otherwise a crash before it would restart at
                # offsets committed after learning, with a model that never learned.
                self._checkpoints.uncovered = True
            else:
                self._consumer.seek(tp, position)
            if tp in self._partitions.jumps:
                reach, committed = self._partitions.jumps.pop(tp)
                jumped = True
                self._checkpoints.uncovered = True  # checkpoint the jump before a crash could undo it
                log.warning(
                    "another replica processed this partition past our state: starting at the group's offset",
                    extra={"partition": str(tp), "our_state_reaches": reach, "group_committed": committed},
                )
        if jumped and self._partitions.settled:
            self._end_replay()  # the journaled decisions of the skipped messages will never be replayed
        self._health.set_assigned(bool(self._partitions.assigned))
        log.info("partitions assigned", extra={"partitions": sorted(map(str, partitions))})

    def on_revoke(self, partitions: set[TopicPartition]) -> None:
        checkpoints = self._checkpoints
        if checkpoints.consistent and not checkpoints.closed:
            checkpoints.checkpoint(self._clock_ms())
            checkpoints.commit(partitions)
        self._forget(partitions)
        for tp in partitions:
            self._partitions.positions.pop(tp, None)  # the next owner starts at the offset just committed
        log.info("partitions revoked", extra={"partitions": sorted(map(str, partitions))})

    def on_lost(self, partitions: set[TopicPartition]) -> None:
        # Too late to commit. Positions stay: if they come back, we resume where our state is.
        self._forget(partitions)
        log.warning("partitions lost", extra={"partitions": sorted(map(str, partitions))})

    def _forget(self, partitions: set[TopicPartition]) -> None:
        if self._partitions.forget(partitions, self._engine.held()):  # type: ignore[arg-type]
            self._end_replay()
        self._engine.forget(lambda m: m.topic_partition in partitions)  # type: ignore[attr-defined]
        self._health.set_assigned(bool(self._partitions.assigned))
        self._metrics.forget_partitions(partitions)
