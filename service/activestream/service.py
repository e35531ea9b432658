"""The service loop: poll a batch → parse → decide or join → produce → flush → checkpoint → commit.

It drives the pure core (``ActiveLearner``, ``PendingStore``) over the transport contract and owns no
logic of its own beyond ordering, which is where the guarantees live:

- **At-least-once in, exactly-once effect on the model.** Offsets are committed only after the batch's
  records are flushed. A checkpoint holds the learner, the pending store and the offsets they cover;
  on start the service restores it and seeks each assigned partition back to the checkpoint's offset, so
  the messages after it are replayed into the state that had not seen them. A replayed ask produces the
  same request id again (ids derive from event ids), so annotators see it once in effect.
- **Replay order.** During a replay, a label may be polled before the replayed event it answers; while
  some events partition is still behind the offset committed before the restart, unknown labels are held
  back and joined once the events caught up (their offsets are not committed before that). Replays are
  exact with one events partition; with several, the interleaving (hence the random draws) may differ
  and a label whose ask was not repeated ends up dead-lettered as ``unknown_request``.
- **Every rejected message is dead-lettered** with its original bytes, key and headers, plus
  ``activestream.reason``/``detail``/``source.*`` headers, and counted. When nearly everything is
  rejected the service stops (``DeadLetterLimitExceeded``): that is a bug or a misconfiguration.

``request_stop()`` (thread-safe; the CLI's signal handlers call it) lets the batch in flight finish, then
the loop flushes, checkpoints, commits and closes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final

from activestream import __version__
from activestream.checkpoint import CheckpointError, CheckpointState, load_checkpoint, save_checkpoint
from activestream.config import Settings
from activestream.decide.policies import RANDOM
from activestream.http import Health
from activestream.join import JoinResult, JoinStatus, PendingEntry, PendingStore
from activestream.learner import ActiveLearner, Decision, make_learner
from activestream.messages import (
    Event,
    Label,
    Rejection,
    RejectReason,
    dead_letter_headers,
    decision_record_for,
    label_request_for,
    parse_event,
    parse_label,
    to_json,
)
from activestream.metrics import Metrics
from activestream.transport.base import Admin, Consumer, Message, Producer, TopicPartition
from activestream.transport.errors import BrokerUnavailable, TransportError
from activestream.types import ClassLabel

__all__ = ["DeadLetterGuard", "DeadLetterLimitExceeded", "Service"]

log = logging.getLogger(__name__)

_JOIN_REJECTIONS: Final = {
    JoinStatus.UNKNOWN: RejectReason.UNKNOWN_REQUEST,
    JoinStatus.EXPIRED: RejectReason.EXPIRED_REQUEST,
    JoinStatus.DUPLICATE: RejectReason.DUPLICATE,
}
# The broker check must not hold the loop up for long: it runs on the loop's thread.
_REACHABILITY_TIMEOUT_S: Final = 2.0


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class DeadLetterLimitExceeded(RuntimeError):
    """Nearly every message is being rejected: a bug or a misconfiguration, not bad data."""


class DeadLetterGuard:
    """Raises ``DeadLetterLimitExceeded`` when too many recent messages were dead-lettered.

    The ratio is checked once ``window`` messages were seen, over the last ``window`` messages.

    >>> guard = DeadLetterGuard(max_ratio=0.9, window=100, max_consecutive=2)
    >>> for rejected in (True, False, True, True):
    ...     guard.record(rejected, "schema")
    >>> guard.record(True, "schema")
    Traceback (most recent call last):
    ...
    activestream.service.DeadLetterLimitExceeded: 3 consecutive messages dead-lettered (more than 2); ...
    """

    def __init__(self, max_ratio: float, window: int, max_consecutive: int):
        self.max_ratio = max_ratio
        self.max_consecutive = max_consecutive
        self._recent: deque[bool] = deque(maxlen=window)
        self._rejected = 0
        self._consecutive = 0

    def record(self, rejected: bool, reason: str = "") -> None:
        if len(self._recent) == self._recent.maxlen:
            self._rejected -= self._recent[0]
        self._recent.append(rejected)
        self._rejected += rejected
        self._consecutive = self._consecutive + 1 if rejected else 0
        if self._consecutive > self.max_consecutive:
            self._fail(
                f"{self._consecutive} consecutive messages dead-lettered (more than {self.max_consecutive})",
                reason,
            )
        window = len(self._recent)
        if window == self._recent.maxlen and self._rejected / window > self.max_ratio:
            self._fail(
                f"{self._rejected} of the last {window} messages dead-lettered (above {self.max_ratio})",
                reason,
            )

    @staticmethod
    def _fail(what: str, reason: str) -> None:
        raise DeadLetterLimitExceeded(
            f"{what}; last reason: {reason}. Nearly everything failing is a bug or a misconfiguration "
            "(topics, message schema, model), not bad data: see the dead-letter topic's headers."
        )


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
        self.metrics = metrics or Metrics(dead_letter_reasons=[r.value for r in RejectReason])
        self.health = health or Health()
        self._clock_ms, self._timer = clock_ms, timer
        self._topics = (settings.events_topic, settings.labels_topic)
        self._ttl_ms = settings.label_ttl_seconds * 1000
        self._guard = DeadLetterGuard(
            settings.dead_letter_max_ratio, settings.dead_letter_window, settings.dead_letter_max_consecutive
        )
        self._stop = threading.Event()
        self._started = False
        self._closed = False
        # State covered by checkpoints (restored in ``start``).
        self.learner: ActiveLearner = learner or make_learner(  # replaced by the checkpoint's, if any
            settings.model, settings.measure, settings.policy, settings.budget, settings.seed
        )
        self.pending = PendingStore(settings.pending_max, self._ttl_ms)
        self.model_version = 0
        #: Next offset to process, per partition the state covers.
        self._positions: dict[TopicPartition, int] = {}
        # Loop bookkeeping.
        self._assigned: set[TopicPartition] = set()
        self._replay_end: dict[TopicPartition, int] = {}
        self._deferred: list[tuple[Message, Label]] = []
        self._threshold = float("nan")
        self._dirty = False  # processed messages since the last checkpoint
        self._consistent = True  # every record produced so far is flushed (false while a batch runs)
        self._last_checkpoint_ms = 0
        self._last_health_check_ms: int | None = None

    # -- lifecycle --------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the loop to stop after the batch in flight (thread-safe, signal-handler safe)."""
        self._stop.set()

    def start(self) -> None:
        """Restore the checkpoint, create the topics (if configured) and join the consumer group."""
        if self._started:
            return
        self._started = True
        self._restore()
        if self.admin is not None and self.settings.create_topics:
            s = self.settings
            topics = [
                s.events_topic,
                s.labels_topic,
                s.requests_topic,
                s.dead_letter_topic,
                s.decisions_topic,
            ]
            self.admin.ensure_topics([topic for topic in topics if topic])
        self.consumer.subscribe(
            list(self._topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        self._last_checkpoint_ms = self._clock_ms()
        measure, _, policy = self.learner.strategy.partition("/")
        self.metrics.build_info(__version__, self.settings.model, measure, policy)
        self.metrics.up(True)
        log.info("service started", extra={"topics": list(self._topics), "strategy": self.learner.strategy})

    def run(self) -> None:
        """Run until ``request_stop()``; then flush, checkpoint, commit and close.

        On an error the transport is closed without a checkpoint (the state may hold records that were
        never flushed) and the error propagates: a restart replays from the last checkpoint.
        """
        self.start()
        try:
            while not self._stop.is_set():
                self.run_once()
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
            self._checkpoint(self._clock_ms())
            self._commit(self._positions.keys() & self._assigned)
        finally:
            self._close()
        log.info("service stopped", extra={"model_version": self.model_version})

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.metrics.up(False)
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
        self._expire(now_ms)
        touched: set[TopicPartition] = set()
        for message in messages:
            self._handle(message, now_ms)
            touched.add(message.topic_partition)
        touched |= self._retry_deferred(now_ms)
        self.producer.flush(self.settings.flush_timeout_seconds)
        self._consistent = True
        if now_ms - self._last_checkpoint_ms >= self.settings.checkpoint_interval_seconds * 1000:
            self._checkpoint(now_ms)
        self._commit(touched)
        self._after_batch(now_ms, started)
        return len(messages)

    def _handle(self, message: Message, now_ms: int) -> None:
        if message.topic == self.settings.events_topic:
            rejection = self._on_event(message, now_ms)
        else:
            rejection = self._on_label(message, now_ms)
        if rejection is None:
            self._guard.record(False)
        else:
            self._dead_letter(message, rejection)
        tp = message.topic_partition
        self._positions[tp] = message.offset + 1
        self._dirty = True
        if tp in self._replay_end and message.offset + 1 >= self._replay_end[tp]:
            del self._replay_end[tp]

    # -- events -----------------------------------------------------------------------------------------
    def _on_event(self, message: Message, now_ms: int) -> Rejection | None:
        s = self.settings
        event = parse_event(message.value, s.max_message_bytes, s.max_features)
        if isinstance(event, Event) and self.pending.knows_event(event.id):
            event = Rejection(RejectReason.DUPLICATE, "an event with this id was asked about already")
        decision = event if isinstance(event, Rejection) else self._decide(event)
        if isinstance(decision, Rejection):
            self.metrics.event("invalid")
            return decision
        assert isinstance(event, Event)  # a decision is only made for a parsed event
        if decision.ask:
            self._ask(event, decision, now_ms)
        else:
            self.metrics.event("discarded")
        if s.decisions_topic:
            record = decision_record_for(event.id, decision, model_version=self.model_version)
            self.producer.produce(s.decisions_topic, to_json(record), key=event.id.encode())
        return None

    def _decide(self, event: Event) -> Decision | Rejection:
        started = self._timer()
        try:
            decision = self.learner.decide(event.features)
        except Exception as error:  # e.g. a feature type the model cannot take: that event, not the loop
            log.warning("model rejected an event", extra={"error": repr(error)})
            return Rejection(
                RejectReason.SCHEMA, f"the model cannot score these features: {type(error).__name__}"
            )
        self.metrics.processing(self._timer() - started)
        self._threshold = decision.threshold
        return decision

    def _ask(self, event: Event, decision: Decision, now_ms: int) -> None:
        request = label_request_for(
            event, decision, model_version=self.model_version, now_ms=now_ms, ttl_ms=self._ttl_ms
        )
        evicted = self.pending.add(
            request.request_id, event.id, event.features, now_ms, decision.reason, decision.y_pred
        )
        self.metrics.pending_expired("evicted", len(evicted))
        self.producer.produce(self.settings.requests_topic, to_json(request), key=event.id.encode())
        self.metrics.event("asked")
        self.metrics.label_request()

    # -- labels -----------------------------------------------------------------------------------------
    def _on_label(self, message: Message, now_ms: int) -> Rejection | None:
        label = parse_label(message.value, self.settings.max_message_bytes)
        if isinstance(label, Rejection):
            self.metrics.label("invalid")
            return label
        result = self.pending.join(now_ms, request_id=label.request_id, event_id=label.event_id)
        if (
            result.status is JoinStatus.UNKNOWN
            and self._replay_end
            and len(self._deferred) < self.settings.pending_max
        ):
            # Its event may be further on in a partition being replayed: join it once that caught up.
            self._deferred.append((message, label))
            return None
        return self._settle(label, result)

    def _settle(self, label: Label, result: JoinResult) -> Rejection | None:
        if result.status is JoinStatus.LEARNED:
            assert result.entry is not None and result.delay_ms is not None
            rejection = self._learn(result.entry, label.label, result.delay_ms)
            self.metrics.label("learned" if rejection is None else "invalid")
            return rejection
        self.metrics.label(result.status.value)
        if result.status is JoinStatus.EXPIRED and result.entry is not None:  # expired just now
            self.metrics.pending_expired("ttl")
        return Rejection(_JOIN_REJECTIONS[result.status], f"label for a {result.status.value} request")

    def _learn(self, entry: PendingEntry, y: ClassLabel, delay_ms: int) -> Rejection | None:
        try:
            self.learner.learn_one(entry.features, y)
        except Exception as error:
            log.warning("model rejected a label", extra={"error": repr(error)})
            return Rejection(
                RejectReason.UNEXPECTED_LABEL, f"the model cannot learn it: {type(error).__name__}"
            )
        self.model_version += 1
        self.metrics.learned(y, delay_ms / 1000)
        if entry.decision_reason == RANDOM:
            self.metrics.judged(entry.predicted_label == y)
        return None

    def _retry_deferred(self, now_ms: int) -> set[TopicPartition]:
        if not self._deferred or self._replay_end:
            return set()
        deferred, self._deferred = self._deferred, []
        for message, label in deferred:
            result = self.pending.join(now_ms, request_id=label.request_id, event_id=label.event_id)
            rejection = self._settle(label, result)
            if rejection is not None:  # (it counted as accepted when it was held back)
                self._dead_letter(message, rejection)
        return {message.topic_partition for message, _ in deferred}

    # -- dead letters -----------------------------------------------------------------------------------
    def _dead_letter(self, message: Message, rejection: Rejection) -> None:
        headers = message.headers + dead_letter_headers(
            rejection, message.topic, message.partition, message.offset
        )
        self.producer.produce(self.settings.dead_letter_topic, message.value or b"", message.key, headers)
        self.metrics.dead_letter(rejection.reason.value)
        log.debug(
            "dead-lettered",
            extra={"reason": rejection.reason.value, "topic": message.topic, "offset": message.offset},
        )
        self._guard.record(True, rejection.reason.value)

    # -- offsets, checkpoints, rebalances ---------------------------------------------------------------
    def _safe_offset(self, tp: TopicPartition) -> int:
        """The next offset to read, but never past a label still held back."""
        held = [m.offset for m, _ in self._deferred if m.topic_partition == tp]
        return min([self._positions[tp], *held])

    def _commit(self, partitions: Iterable[TopicPartition]) -> None:
        offsets = {tp: self._safe_offset(tp) for tp in partitions if tp in self._positions}
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
        except TransportError as error:  # the checkpoint protects the model; the next commit catches up
            log.warning("commit failed", extra={"error": str(error)})

    def _checkpoint(self, now_ms: int) -> None:
        self._last_checkpoint_ms = now_ms  # also after a failure: retry at the next interval, not every batch
        if not (self._dirty and self._consistent) or self._deferred:
            return  # nothing new, records not flushed, or a replay not settled yet: the old one is right
        correct, judged = self.metrics.accuracy_counts
        state = CheckpointState(
            learner=self.learner,
            pending=self.pending,
            offsets=dict(self._positions),
            model_version=self.model_version,
            counters={"prequential_correct": correct, "prequential_judged": judged},
            created_at_ms=now_ms,
        )
        try:
            size = save_checkpoint(self.settings.checkpoint_path, state)
        except CheckpointError:
            return  # logged by save_checkpoint; checkpoint_age_seconds keeps growing for the alert
        self._dirty = False
        self.metrics.checkpoint_saved(now_ms / 1000)
        log.info("checkpoint saved", extra={"bytes": size, "model_version": self.model_version})

    def _restore(self) -> None:
        state = load_checkpoint(self.settings.checkpoint_path)  # CheckpointError: refuse to start
        if state is None:
            log.info(
                "no checkpoint: starting from scratch", extra={"path": str(self.settings.checkpoint_path)}
            )
            return
        self.learner, self.pending, self.model_version = state.learner, state.pending, state.model_version
        self._positions = dict(state.offsets)
        self.metrics.restore_accuracy(
            state.counters.get("prequential_correct", 0), state.counters.get("prequential_judged", 0)
        )
        self.metrics.checkpoint_saved(state.created_at_ms / 1000)
        configured = f"{self.settings.measure}/{self.settings.policy}"
        if self.learner.strategy != configured:
            log.warning(
                "the checkpoint's strategy differs from the configuration; the checkpoint's is used",
                extra={"checkpoint": self.learner.strategy, "configured": configured},
            )
        log.info(
            "checkpoint restored",
            extra={"model_version": self.model_version, "partitions": len(state.offsets)},
        )

    def _on_assign(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions - self._assigned:
            committed = self.consumer.committed(tp)
            position = self._positions.get(tp)
            if position is None:
                # Not covered by our state: start at the group's offset, and record it so that the next
                # checkpoint covers this partition even if nothing arrives on it before then.
                self._positions[tp] = 0 if committed is None else committed
                continue
            self.consumer.seek(tp, position)
            if tp.topic == self.settings.events_topic and committed is not None and committed > position:
                self._replay_end[tp] = committed
        self._assigned |= partitions
        self.health.set_assigned(bool(self._assigned))
        log.info("partitions assigned", extra={"partitions": sorted(map(str, partitions))})

    def _on_revoke(self, partitions: set[TopicPartition]) -> None:
        if self._consistent and not self._closed:
            self._checkpoint(self._clock_ms())
            self._commit(partitions)
        self._forget(partitions)
        for tp in partitions:
            self._positions.pop(tp, None)  # whoever gets it next starts at the offset just committed
        log.info("partitions revoked", extra={"partitions": sorted(map(str, partitions))})

    def _on_lost(self, partitions: set[TopicPartition]) -> None:
        # Too late to commit. Positions stay: if they come back, we resume where our state is.
        self._forget(partitions)
        log.warning("partitions lost", extra={"partitions": sorted(map(str, partitions))})

    def _forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions & self._positions.keys():
            self._positions[tp] = self._safe_offset(tp)  # held-back labels are read again
        self._deferred = [(m, label) for m, label in self._deferred if m.topic_partition not in partitions]
        for tp in partitions:
            self._replay_end.pop(tp, None)
        self._assigned -= partitions
        self.health.set_assigned(bool(self._assigned))
        self.metrics.forget_partitions(partitions)

    # -- bookkeeping ------------------------------------------------------------------------------------
    def _expire(self, now_ms: int) -> None:
        expired = self.pending.expire(now_ms)
        self.metrics.pending_expired("ttl", len(expired))

    def _after_batch(self, now_ms: int, started: float) -> None:
        self.metrics.batch(self._timer() - started)
        self.metrics.pending(len(self.pending))
        # The policy's own budget: ``learner.budget`` is only the default used when a policy is named.
        target = getattr(self.learner.policy, "budget", self.learner.budget)
        self.metrics.policy_state(self._threshold, target, self.learner.spending)
        self.health.beat()
        last = self._last_health_check_ms
        if last is None or now_ms - last >= self.settings.health_check_interval_seconds * 1000:
            self._last_health_check_ms = now_ms
            self._check_broker()

    def _check_broker(self) -> None:
        reachable = self.admin.is_reachable(_REACHABILITY_TIMEOUT_S) if self.admin is not None else True
        self.health.set_broker_reachable(reachable)
        if not reachable:
            return
        try:
            lags = self.consumer.lag()
        except TransportError as error:
            log.debug("lag not measured", extra={"error": str(error)})
            return
        self.metrics.lag({tp: lag for tp, lag in lags.items() if tp in self._assigned})
        for tp, lag in lags.items():
            if lag == 0:  # at the end of the log: nothing left to replay (even if retention deleted some)
                self._replay_end.pop(tp, None)
