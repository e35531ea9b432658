"""One polled batch into the engine, in order (``Feeder``): each run of events together, each label alone.

Every message handled moves its partition's position past it; a rejected one is dead-lettered. During a
replay, a label of a request the engine does not know yet is held back (``Partitions.deferred``) and
tried again once no partition replays any more. The loop then journals, produces and flushes what the
engine emitted (:mod:`activestream.service`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from activestream.checkpointing import Checkpointing
from activestream.config import Settings
from activestream.deadletters import DeadLetters
from activestream.engine import DEFER, Engine
from activestream.messages import Rejection
from activestream.partitions import Partitions
from activestream.transport.base import Message, TopicPartition, partitions_of

__all__ = ["Feeder"]


class Feeder:
    """Feeds batches to the engine for the loop. ``end_replay`` is the loop's: called when a message
    handled ends the last partition's replay."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        partitions: Partitions,
        dead_letters: DeadLetters,
        checkpoints: Checkpointing,
        end_replay: Callable[[], None],
    ):
        self._settings, self._engine, self._partitions = settings, engine, partitions
        self._dead_letters, self._checkpoints, self._end_replay = dead_letters, checkpoints, end_replay
        self._released: set[TopicPartition] = set()  # partitions of held events decided this batch

    def feed(self, messages: Sequence[Message], now_ms: int) -> set[TopicPartition]:
        """Feed the batch to the engine; return the partitions whose offsets it may have moved (to commit)."""
        self._handle(messages, now_ms)
        touched = partitions_of(messages)
        touched |= {m.topic_partition for m in self._engine.close_window(now_ms)} | self._released
        self._released = set()
        touched |= self._retry_deferred(now_ms)
        return touched

    def _handle(self, messages: Sequence[Message], now_ms: int) -> None:
        """Feed the batch to the engine in order: each run of events together, each label alone."""
        events = self._settings.events_topic
        start = 0
        for i, message in enumerate(messages):
            if message.topic != events:
                self._handle_events(messages[start:i], now_ms)
                self._handle_label(message, now_ms)
                start = i + 1
        self._handle_events(messages[start:], now_ms)

    def _handle_events(self, run: Sequence[Message], now_ms: int) -> None:
        if run:
            rejections = self._engine.on_events(run, now_ms)
            if self._partitions.replay_end:  # a replay may end at any message: each in turn
                for message, rejection in zip(run, rejections, strict=True):
                    self._handled(message, rejection)
            else:
                self._handled_run(run, rejections)
            self._released |= partitions_of(self._engine.close_window(now_ms))

    def _handled_run(self, run: Sequence[Message], rejections: Sequence[Rejection | None]) -> None:
        """``_handled`` of each message of a run when no partition replays, its bookkeeping done once:
        the guard told of each stretch of accepted messages at once, each partition's position moved
        once, to its last message (no replay to end on the way)."""
        accepted = 0
        for message, rejection in zip(run, rejections, strict=True):
            if rejection is None:
                accepted += 1
                continue
            self._dead_letters.accepted(accepted)  # the guard sees the messages in their order
            accepted = 0
            self.dead_letter(message, rejection)
        self._dead_letters.accepted(accepted)
        self._checkpoints.dirty = True
        last = {(m.topic, m.partition): m.offset for m in run}
        for (topic, partition), offset in last.items():
            self._partitions.advance(TopicPartition(topic, partition), offset)

    def _handle_label(self, message: Message, now_ms: int) -> None:
        deferred = self._partitions.deferred
        may_defer = self._partitions.replaying and len(deferred) < self._settings.pending_max
        result = self._engine.on_label(message, now_ms, may_defer=may_defer)
        if result is DEFER:
            deferred.append(message)
            self._handled(message, None)
        else:
            assert not isinstance(result, type(DEFER))
            self._handled(message, result)

    def _handled(self, message: Message, rejection: Rejection | None) -> None:
        """Dead-letter or count a handled message, and move its partition's position past it."""
        if rejection is not None:
            self.dead_letter(message, rejection)
        else:
            self._dead_letters.accepted()
        self._checkpoints.dirty = True
        if self._partitions.advance(message.topic_partition, message.offset):
            self._end_replay()

    def _retry_deferred(self, now_ms: int) -> set[TopicPartition]:
        if not self._partitions.deferred or self._partitions.replaying:
            return set()
        deferred, self._partitions.deferred = self._partitions.deferred, []
        for message in deferred:
            result = self._engine.on_label(message, now_ms)
            if isinstance(result, Rejection):  # (it counted as accepted when it was held back)
                self.dead_letter(message, result)
        return partitions_of(deferred)

    def dead_letter(self, message: Message, rejection: Rejection) -> None:
        """Dead-letter ``message`` and journal it (a replay does not repeat it)."""
        source = self._dead_letters.send(
            message, rejection, replaying=message.topic_partition in self._partitions.replay_end
        )
        if source is not None:
            self._engine.outbox.dead_letters.append(source)  # journaled: a replay does not repeat it
