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

- **One model across replicas** (``training_topic``): before each poll the loop reads the training log
  (``reader``, no group) and the engine learns its records first; a full read means more is waiting, so
  that poll does not wait for events (:mod:`activestream.engine.training_log`). A batch's records for
  the log (the requests it made) are flushed before its label requests are produced: no annotator can
  answer a request the log does not hold yet, so in the log a request always comes before its labels.
  With ``snapshot_topic`` a replica publishes the group's model there now and then, and a replica with no
  checkpoint starts from the newest one instead of the log's start (:mod:`activestream.snapshotting`).

``request_stop()`` (thread-safe; the CLI's signal handlers call it) lets the batch in flight finish, then
the loop flushes, checkpoints, commits and closes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from activestream.checkpointing import Checkpointing
from activestream.config import Settings
from activestream.deadletters import DeadLetterGuard, DeadLetterLimitExceeded, DeadLetters
from activestream.engine import Engine
from activestream.engine.deciding import PAUSED
from activestream.engine.step import Record
from activestream.feeding import Feeder
from activestream.flushing import flush_patiently
from activestream.health import Health
from activestream.learner import ActiveLearner
from activestream.metrics import Metrics
from activestream.monitoring import Monitoring
from activestream.partitions import Partitions
from activestream.persistence import Persistence
from activestream.rebalancing import Rebalancing
from activestream.snapshotting import Snapshotting
from activestream.startup import announce, prepare_topics, service_topics
from activestream.takeover import Takeover
from activestream.transport.base import Admin, Consumer, Message, Producer, Reader
from activestream.transport.errors import BrokerUnavailable

__all__ = ["PAUSED", "DeadLetterGuard", "DeadLetterLimitExceeded", "Service", "service_topics"]

log = logging.getLogger(__name__)


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
    reader
        Reads the training log (required with ``training_topic``; :mod:`activestream.engine.training_log`).
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
        reader: Reader | None = None,
        learner: ActiveLearner | None = None,
        metrics: Metrics | None = None,
        health: Health | None = None,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        timer: Callable[[], float] = time.perf_counter,
    ):
        self.settings = settings
        self.consumer, self.producer, self.admin = consumer, producer, admin
        if settings.training_topic and reader is None:
            raise ValueError("a service with a training topic needs a reader of it")
        self.reader = reader
        self.engine = Engine(settings, learner=learner, metrics=metrics, timer=timer)
        self.metrics = self.engine.metrics
        self.health = health or Health()
        self._clock_ms, self._timer = clock_ms, timer
        self._topics = (settings.events_topic, settings.labels_topic)
        self._dead_letters = DeadLetters(producer, settings, self.metrics)
        self._stop = threading.Event()
        self._started = self._closed = False
        self._partitions = Partitions()
        self._store = Persistence(settings, self.engine)
        # Where checkpoints and commits stand (dirty, uncovered, consistent), what they may cover.
        self._checkpoints = Checkpointing(settings, self.engine, consumer, self._partitions, self._store)
        self._feeder = Feeder(
            settings, self.engine, self._partitions, self._dead_letters, self._checkpoints, self._end_replay
        )
        s = settings
        self._takeover = Takeover(consumer, admin, s.checkpoint_path, s.group_id, s.group_instance_id)
        self._rebalancing = Rebalancing(
            consumer,
            self.engine,
            self._partitions,
            self._checkpoints,
            self.health,
            clock_ms,
            self._end_replay,
            self._takeover.joined,
        )
        self._monitoring = Monitoring(
            settings, self.engine, consumer, admin, self._partitions, self.health, timer, self._end_replay
        )
        self._snapshots = Snapshotting(
            settings, self.engine, reader, self._partitions, self._send, self._flush
        )

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
        prepare_topics(self.admin, self.settings)
        self._restore()
        self._takeover.before_join()  # a killed predecessor's partitions come to us without its session
        log_partition = self.engine.training_partition
        if self.reader is not None and log_partition is not None:
            self.reader.assign(log_partition, self.engine.state.training_offset)
        r = self._rebalancing
        self.consumer.subscribe(
            list(self._topics), on_assign=r.on_assign, on_revoke=r.on_revoke, on_lost=r.on_lost
        )
        self._checkpoints.last_ms = self._clock_ms()
        announce(self.metrics, self.settings, self.learner, self.watch)
        self._monitoring.start()
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
            self._checkpoints.checkpoint(self._clock_ms())
            self._checkpoints.commit(self._partitions.positions.keys() & self._partitions.assigned)
        finally:
            self._close()
        log.info("service stopped", extra={"model_version": self.model_version})

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = self._checkpoints.closed = True  # a revoke while the consumer closes commits nothing
        self.metrics.up(False)
        self._monitoring.stop()
        self._store.close()
        for part in (self.consumer, self.reader, self.producer, self.admin):
            if part is not None:
                try:
                    part.close()
                except Exception as error:  # closing the others matters more than this failure
                    log.warning("close failed", extra={"part": type(part).__name__, "error": repr(error)})

    # -- one batch --------------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Poll and handle one batch; return the number of messages handled (training-log records too)."""
        s, log_partition = self.settings, self.engine.training_partition
        examples: list[Message] = []
        try:
            if self.reader is not None and log_partition is not None:
                examples = self.reader.poll(0.0, s.max_poll_records)
            # A full read of the log: more is waiting (a replica catching up), so do not wait for events.
            wait_s = 0.0 if len(examples) >= s.max_poll_records else s.poll_timeout_seconds
            messages = self.consumer.poll(wait_s, s.max_poll_records)
        except BrokerUnavailable as error:
            if examples:  # read, not learned: the reader goes back to where the model stands in the log
                assert self.reader is not None and log_partition is not None
                self.reader.assign(log_partition, self.engine.state.training_offset)
            log.warning("broker unavailable", extra={"error": str(error)})
            self.health.set_broker_reachable(False)
            self.health.beat()  # the loop is alive; an outage must not get the process restarted
            self._stop.wait(self.settings.poll_timeout_seconds)
            return 0
        started, now_ms = self._timer(), self._clock_ms()
        self._checkpoints.consistent = False
        self.engine.tick(now_ms)
        self._learn_training_log(examples, now_ms)
        touched = self._feeder.feed(messages, now_ms)
        self._publish()
        self._flush()
        self._store.mark_published()
        self._snapshots.publish_if_due(now_ms, caught_up=len(examples) < s.max_poll_records)
        self._checkpoints.consistent = True
        if self._checkpoints.due(now_ms) or self._dead_letters.tripped:
            self._checkpoints.checkpoint(now_ms)
        self._checkpoints.commit(touched)
        self._monitoring.after_batch(now_ms, started)
        if self._dead_letters.tripped is not None:
            raise self._dead_letters.tripped  # committed: a restart moves past what was dead-lettered
        return len(messages) + len(examples)

    def _learn_training_log(self, examples: list[Message], now_ms: int) -> None:
        """Learn the training log's records read since the last batch (every replica learns all of them);
        dead-letter the labels this replica appended that joined no request."""
        for message in examples:
            rejection = self.engine.on_training(message, message.offset, now_ms)
            self._checkpoints.dirty = True
            if rejection is not None:  # the same on every replica: skipped by all, logged by each
                log.warning(
                    "training record skipped",
                    extra={
                        "offset": message.offset,
                        "reason": rejection.reason.value,
                        "detail": rejection.detail,
                    },
                )
        for source, rejection in self.engine.rejected_labels():
            self._feeder.dead_letter(Message(*source), rejection)

    def _publish(self) -> None:
        """Journal the batch's step, then produce its records in order (the training log's first, flushed
        before any label request goes out: see the module docstring)."""
        step = self.engine.take_step()
        self._store.append(step, self._partitions.positions)  # raises CheckpointError: nothing went out
        self._produce(step.records)

    def _produce(self, records: Sequence[Record]) -> None:
        """Produce ``records`` in order; with label requests among them, the training log's first, flushed
        (a request reaches the annotators only once the log holds it)."""
        log_topic, requests = self.settings.training_topic, self.settings.requests_topic
        if log_topic and any(record.topic == requests for record in records):
            self._send(record for record in records if record.topic == log_topic)
            self._flush()
            self._send(record for record in records if record.topic != log_topic)
        else:
            self._send(records)

    def _send(self, records: Iterable[Record]) -> None:
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
            self._monitoring.waiting,
        )

    # -- restore, replay --------------------------------------------------------------------------------
    def _restore(self) -> None:
        """Restore the checkpoint and the journal; produce again what may never have been published."""
        republish = self._checkpoints.restore(self._dead_letters, self._snapshots.load)
        self._produce(republish)
        for _ in (r for r in republish if r.topic == self.settings.requests_topic):
            self.metrics.label_request()
        self._checkpoints.dirty = True  # the next checkpoint covers what the journal put back as pending

    def _end_replay(self) -> None:
        """Every partition is past where it was before the restart: what the journal still holds of
        events and dead letters not seen again will not be (their partitions moved away)."""
        self.engine.end_replay()
        self._dead_letters.published_before.clear()
