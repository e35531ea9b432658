"""The loop: poll → feed the engine → journal → produce → flush → checkpoint → commit.

It moves bytes between the transport and the :class:`~activestream.engine.Engine` (which decides and
learns) and owns the ordering, which is where the guarantees live:

- **At-least-once in, exactly-once effect on the model.** Offsets are committed only after the batch's
  records are flushed. A checkpoint holds the engine's state and the offsets it covers; on start the
  loop restores it and seeks each assigned partition back to the checkpoint's offset, so the messages
  after it are replayed into the state that had not seen them.
- **A decision is made once.** Each batch's step (asks, discards, labels learned, dead letters, records)
  is journaled before its records are produced, and marked published once they are flushed
  (:mod:`activestream.journal`). A restart gives the steps back to the engine: replayed events get
  their first decision again, replayed labels are learned but not counted again, only unpublished
  records are produced again (same request ids), dead letters already published are not repeated.
- **Replay order.** During a replay a label may be polled before the replayed event it answers: while
  an events partition is behind the offset committed before the restart, labels of unknown requests
  are held back and joined once the events caught up (their offsets are not committed before that).
- **Every rejected message is dead-lettered** with its original bytes, key and headers, plus
  ``activestream.reason``/``detail``/``source.*`` headers, and counted. When nearly everything is
  rejected (``DeadLetterGuard``) the loop finishes the batch — dead letters produced, state
  checkpointed, offsets committed, so a restart moves past them — then stops with
  ``DeadLetterLimitExceeded``.

``request_stop()`` (thread-safe; the CLI's signal handlers call it) lets the batch in flight finish, then
the loop flushes, checkpoints, commits and closes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from activestream import __version__
from activestream.config import ConfigError, Settings, env_var
from activestream.deadletters import DeadLetterGuard, DeadLetterLimitExceeded, DeadLetters
from activestream.engine import DEFER, Engine
from activestream.engine.deciding import PAUSED
from activestream.engine.step import Record
from activestream.flushing import flush_patiently
from activestream.health import BrokerWatch, Health
from activestream.learner import ActiveLearner
from activestream.messages import Rejection
from activestream.metrics import Metrics
from activestream.partitions import Partitions
from activestream.persistence import Persistence
from activestream.transport.base import Admin, Consumer, Message, Producer, TopicPartition
from activestream.transport.errors import BrokerUnavailable, TransportError

__all__ = ["PAUSED", "DeadLetterGuard", "DeadLetterLimitExceeded", "Service", "service_topics"]

log = logging.getLogger(__name__)

# The broker check must not hold the loop up for long: it runs on the loop's thread.
_REACHABILITY_TIMEOUT_S: Final = 2.0


def service_topics(settings: Settings) -> list[str]:
    """The topics the service reads and writes (the decisions topic when it is set)."""
    s = settings
    names = (s.events_topic, s.labels_topic, s.requests_topic, s.dead_letter_topic, s.decisions_topic)
    return [topic for topic in names if topic]


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Service:
    """The consumer loop of activestream.

    Parameters
    ----------
    settings
        The configuration (topics, limits, learner, checkpoint path and intervals).
    consumer, producer, admin
        The transport (``transport.kafka`` in production, ``transport.memory`` in tests). ``admin`` is
        optional: without it topics are not created and the broker counts as reachable after a flush.
    learner
        The learner to start with when there is no checkpoint (default: built from ``settings``).
    metrics, health
        Shared with the HTTP server (default: fresh ones).
    clock_ms
        Wall-clock milliseconds: label-request times, TTLs and the checkpoint and health intervals.
    timer
        A monotonic seconds counter for the duration histograms.
    """

    def __init__(
        self,
        settings: Settings,
        consumer: Consumer,
        producer: Producer,
        admin: Admin | None = None,
        *,
        learner: ActiveLearner | None = None,
        metrics: Metrics | None = None,
        health: Health | None = None,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        timer: Callable[[], float] = time.perf_counter,
    ):
        self.settings = settings
        self.consumer, self.producer, self.admin = consumer, producer, admin
        self.engine = Engine(settings, learner=learner, metrics=metrics, timer=timer)
        self.metrics = self.engine.metrics
        self.health = health or Health()
        # Readiness follows the broker even while the loop is held in a client call (see health.py).
        self._broker_watch = (
            BrokerWatch(
                admin.is_reachable,
                self.health,
                settings.health_check_interval_seconds,
                _REACHABILITY_TIMEOUT_S,
            )
            if admin is not None
            else None
        )
        self._clock_ms, self._timer = clock_ms, timer
        self._topics = (settings.events_topic, settings.labels_topic)
        self._dead_letters = DeadLetters(producer, settings, self.metrics)
        self._stop = threading.Event()
        self._started = self._closed = False
        self._partitions = Partitions()
        self._released: set[TopicPartition] = set()  # partitions of held events decided this batch
        self._dirty = False  # processed messages since the last checkpoint
        self._uncovered = False  # partitions assigned that no checkpoint covers yet
        self._consistent = True  # every record produced so far is flushed (false while a batch runs)
        self._last_checkpoint_ms = 0
        self._last_health_check_ms: int | None = None
        self._store = Persistence(settings, self.engine)

    # -- the engine's state, for the HTTP API and tests --------------------------------------------------
    learner = property(lambda self: self.engine.state.learner, doc="The ``ActiveLearner``.")
    watch = property(lambda self: self.engine.state.watch, doc="The ``DriftWatch`` around the learner.")
    pending = property(lambda self: self.engine.state.pending, doc="The ``PendingStore``.")
    stopping = property(lambda self: self.engine.state.stopping, doc="The ``StoppingMonitor``.")
    ballots = property(lambda self: self.engine.state.ballots, doc="Votes (several annotators a request).")
    model_version = property(lambda self: self.engine.state.model_version, doc="Labels learned.")

    def resume_label_requests(self) -> None:
        """Resume label requests paused by the stopping criteria (the drift detectors' hook)."""
        self.engine.resume_label_requests()

    # -- lifecycle --------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the loop to stop after the batch in flight (thread-safe, signal-handler safe)."""
        self._stop.set()

    def start(self) -> None:
        """Restore the checkpoint and the journal, create the topics (if configured), join the group."""
        if self._started:
            return
        self._started = True
        self._restore()
        s = self.settings
        topics = service_topics(s)
        if self.admin is not None and s.create_topics:
            self.admin.ensure_topics(topics)
        elif self.admin is not None and (missing := self.admin.missing_topics(topics)):
            raise ConfigError(
                f"topic(s) {', '.join(missing)} do not exist on {s.bootstrap_servers}: create them, check "
                f"the ACTIVESTREAM_*_TOPIC names, or set {env_var('create_topics')}=true"
            )
        self.consumer.subscribe(
            list(self._topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        self._last_checkpoint_ms = self._clock_ms()
        measure, _, policy = self.learner.strategy.partition("/")
        self.metrics.build_info(__version__, s.model, measure, policy)
        arms = self.watch.status()
        if arms is not None:
            self.metrics.adaptation(arms.detector)
        self.metrics.up(True)
        if self._broker_watch is not None:
            self._broker_watch.start()
        log.info("service started", extra={"topics": list(self._topics), "strategy": self.learner.strategy})

    def run(self) -> None:
        """Run until ``request_stop()``; then flush, checkpoint, commit and close.

        ``DeadLetterLimitExceeded`` is logged as one line and propagates after its batch was committed.
        On any other error the transport is closed without a checkpoint (the state may hold records that
        were never flushed) and the error propagates: a restart replays from the last checkpoint.
        """
        self.start()
        try:
            while not self._stop.is_set():
                self.run_once()
        except DeadLetterLimitExceeded as error:
            log.error("stopping: dead-letter limit exceeded", extra={"reason": str(error)})
            self._close()
            raise
        except BaseException:
            log.exception("service loop failed; stopping without a checkpoint")
            self._close()
            raise
        self.shutdown()

    def shutdown(self) -> None:
        """Flush, checkpoint, commit and close (call between batches)."""
        if self._closed:
            return
        try:
            self.producer.flush(self.settings.flush_timeout_seconds)  # raises: no checkpoint, no commit
            self._store.mark_published()
            self._checkpoint(self._clock_ms())
            self._commit(self._partitions.positions.keys() & self._partitions.assigned)
        finally:
            self._close()
        log.info("service stopped", extra={"model_version": self.model_version})

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.metrics.up(False)
        if self._broker_watch is not None:
            self._broker_watch.stop()
        self._store.close()
        for part in (self.consumer, self.producer, self.admin):
            if part is not None:
                try:
                    part.close()
                except Exception as error:  # closing the others matters more than this failure
                    log.warning("close failed", extra={"part": type(part).__name__, "error": repr(error)})

    # -- one batch --------------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Poll and handle one batch; return the number of messages handled."""
        try:
            messages = self.consumer.poll(self.settings.poll_timeout_seconds, self.settings.max_poll_records)
        except BrokerUnavailable as error:
            log.warning("broker unavailable", extra={"error": str(error)})
            self.health.set_broker_reachable(False)
            self.health.beat()  # the loop is alive; an outage must not get the process restarted
            self._stop.wait(self.settings.poll_timeout_seconds)
            return 0
        started, now_ms = self._timer(), self._clock_ms()
        self._consistent = False
        self.engine.tick(now_ms)
        self._handle(messages, now_ms)
        touched = {message.topic_partition for message in messages}
        touched |= {m.topic_partition for m in self.engine.close_window(now_ms)} | self._released
        self._released = set()
        touched |= self._retry_deferred(now_ms)
        self._publish()
        self._flush()
        self._store.mark_published()
        self._consistent = True
        interval_ms = self.settings.checkpoint_interval_seconds * 1000
        if self._uncovered or self._dead_letters.tripped or now_ms - self._last_checkpoint_ms >= interval_ms:
            self._checkpoint(now_ms)
        self._commit(touched)
        self._after_batch(now_ms, started)
        if self._dead_letters.tripped is not None:
            raise self._dead_letters.tripped  # committed: a restart moves past what was dead-lettered
        return len(messages)

    def _handle(self, messages: Sequence[Message], now_ms: int) -> None:
        """Feed the batch to the engine in order: each run of events together, each label alone."""
        events = self.settings.events_topic
        start = 0
        for i, message in enumerate(messages):
            if message.topic != events:
                self._handle_events(messages[start:i], now_ms)
                self._handle_label(message, now_ms)
                start = i + 1
        self._handle_events(messages[start:], now_ms)

    def _handle_events(self, run: Sequence[Message], now_ms: int) -> None:
        if run:
            for message, rejection in zip(run, self.engine.on_events(run, now_ms), strict=True):
                self._handled(message, rejection)
            self._released |= {m.topic_partition for m in self.engine.close_window(now_ms)}

    def _handle_label(self, message: Message, now_ms: int) -> None:
        deferred = self._partitions.deferred
        may_defer = self._partitions.replaying and len(deferred) < self.settings.pending_max
        result = self.engine.on_label(message, now_ms, may_defer=may_defer)
        if result is DEFER:
            deferred.append(message)
            self._handled(message, None)
        else:
            assert not isinstance(result, type(DEFER))
            self._handled(message, result)

    def _handled(self, message: Message, rejection: Rejection | None) -> None:
        """Dead-letter or count a handled message, and move its partition's position past it."""
        if rejection is not None:
            self._dead_letter(message, rejection)
        else:
            self._dead_letters.accepted()
        self._dirty = True
        if self._partitions.advance(message.topic_partition, message.offset):
            self._end_replay()

    def _retry_deferred(self, now_ms: int) -> set[TopicPartition]:
        if not self._partitions.deferred or self._partitions.replaying:
            return set()
        deferred, self._partitions.deferred = self._partitions.deferred, []
        for message in deferred:
            result = self.engine.on_label(message, now_ms)
            if isinstance(result, Rejection):  # (it counted as accepted when it was held back)
                self._dead_letter(message, result)
        return {message.topic_partition for message in deferred}

    def _publish(self) -> None:
        """Journal the batch's step, then produce its records in order."""
        step = self.engine.take_step()
        self._store.append(step, self._partitions.positions)  # raises CheckpointError: nothing went out
        self._produce(step.records)

    def _produce(self, records: Iterable[Record]) -> None:
        for topic, value, key, headers in records:
            self.producer.produce(topic, value, key, headers)

    def _flush(self) -> None:
        """Wait for the batch's records, through an outage (a failure raises: no checkpoint, no commit)."""
        s = self.settings
        flush_patiently(
            self.producer,
            s.flush_timeout_seconds,
            s.health_check_interval_seconds,
            self._stop.is_set,
            self._waiting,
        )

    def _waiting(self) -> None:
        self.health.beat()
        self._check_broker()

    def _dead_letter(self, message: Message, rejection: Rejection) -> None:
        source = self._dead_letters.send(
            message, rejection, replaying=message.topic_partition in self._partitions.replay_end
        )
        if source is not None:
            self.engine.outbox.dead_letters.append(source)  # journaled: a replay does not repeat it

    # -- offsets, checkpoints, rebalances ---------------------------------------------------------------
    def _safe_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The offsets to commit or checkpoint: never past a held-back label or an event in a batch window."""
        held = list(self.engine.held())
        positions = self._partitions.positions
        return {tp: self._partitions.safe_offset(tp, held) for tp in partitions if tp in positions}  # type: ignore[arg-type]

    def _commit(self, partitions: Iterable[TopicPartition]) -> None:
        offsets = self._safe_offsets(partitions)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
        except TransportError as error:  # the checkpoint protects the model; the next commit catches up
            log.warning("commit failed", extra={"error": str(error)})

    def _checkpoint(self, now_ms: int) -> None:
        self._last_checkpoint_ms = now_ms  # also after a failure: retry at the next interval, not every batch
        if not ((self._dirty or self._uncovered) and self._consistent) or self._partitions.deferred:
            return  # nothing new, records not flushed, or a replay not settled yet: the old one is right
        offsets = self._safe_offsets(self._partitions.positions)  # held events are replayed
        if self._store.save(offsets, self._partitions.replay_targets, now_ms):
            self._dirty = self._uncovered = False

    def _restore(self) -> None:
        """Restore the checkpoint and the journal; produce again what may never have been published."""
        positions = self._store.restore() or {}
        recovered = self._store.recover()
        self._partitions.restore(positions, recovered.ends)
        self._dead_letters.published_before = recovered.dead_lettered
        self._produce(recovered.republish)
        for _ in (r for r in recovered.republish if r.topic == self.settings.requests_topic):
            self.metrics.label_request()
        self._dirty = True  # the next checkpoint covers what the journal put back in the pending store

    def _on_assign(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions - self._partitions.assigned:
            position = self._partitions.assign(tp, self.consumer.committed(tp))
            if position is None:
                # Not covered by our state: it starts at the group's offset, and the next checkpoint must
                # cover that before a commit goes past it. Otherwise a crash before it would restart at
                # offsets committed after learning, with a model that never learned.
                self._uncovered = True
            else:
                self.consumer.seek(tp, position)
        self.health.set_assigned(bool(self._partitions.assigned))
        log.info("partitions assigned", extra={"partitions": sorted(map(str, partitions))})

    def _on_revoke(self, partitions: set[TopicPartition]) -> None:
        if self._consistent and not self._closed:
            self._checkpoint(self._clock_ms())
            self._commit(partitions)
        self._forget(partitions)
        for tp in partitions:
            self._partitions.positions.pop(tp, None)  # the next owner starts at the offset just committed
        log.info("partitions revoked", extra={"partitions": sorted(map(str, partitions))})

    def _on_lost(self, partitions: set[TopicPartition]) -> None:
        # Too late to commit. Positions stay: if they come back, we resume where our state is.
        self._forget(partitions)
        log.warning("partitions lost", extra={"partitions": sorted(map(str, partitions))})

    def _forget(self, partitions: set[TopicPartition]) -> None:
        if self._partitions.forget(partitions, self.engine.held()):  # type: ignore[arg-type]
            self._end_replay()
        self.engine.forget(lambda m: m.topic_partition in partitions)  # type: ignore[attr-defined]
        self.health.set_assigned(bool(self._partitions.assigned))
        self.metrics.forget_partitions(partitions)

    def _end_replay(self) -> None:
        """Every partition is past where it was before the restart: what the journal still holds of
        events and dead letters not seen again will not be (their partitions moved away)."""
        self.engine.end_replay()
        self._dead_letters.published_before.clear()

    # -- bookkeeping ------------------------------------------------------------------------------------
    def _after_batch(self, now_ms: int, started: float) -> None:
        self.metrics.batch(self._timer() - started)
        self.engine.report()
        self.health.beat()
        last = self._last_health_check_ms
        if last is None or now_ms - last >= self.settings.health_check_interval_seconds * 1000:
            self._last_health_check_ms = now_ms
            self._check_broker()

    def _check_broker(self) -> None:
        if self._broker_watch is None:
            self.health.set_broker_reachable(True)
        elif not self._broker_watch.check():
            return
        try:
            lags = self.consumer.lag()
        except TransportError as error:
            log.debug("lag not measured", extra={"error": str(error)})
            return
        self.metrics.lag({tp: lag for tp, lag in lags.items() if tp in self._partitions.assigned})
        for tp, lag in lags.items():  # at the end of the log: nothing left to replay
            if lag == 0 and self._partitions.caught_up(tp):
                self._end_replay()
