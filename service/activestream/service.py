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
- **Asks are journaled before they are published.** A replay re-decides the events since the checkpoint
  with a model that may have learned its labels in another order, so with a model-dependent policy it
  could discard an event whose request annotators already have, and their label would be lost. Each
  batch's asks are appended to the ``AskJournal`` (fsynced) before their requests and audit records are
  produced; a restart restores them into the pending store, publishes them again (same ids) and does not
  decide their events again.
- **Every rejected message is dead-lettered** with its original bytes, key and headers, plus
  ``activestream.reason``/``detail``/``source.*`` headers, and counted. When nearly everything is
  rejected the service stops (``DeadLetterLimitExceeded``): that is a bug or a misconfiguration.

- **Batch scoring changes nothing but speed.** With ``batch_scoring=auto`` each run of event messages
  between two labels is parsed and scored together (``batch_parsing``, ``batch_scoring``; the model only
  changes when it learns a label), then decided, concluded and counted in message order as one event at
  a time would be: same decisions, records, dead letters, metrics and offsets (a test runs both paths).
  Where a later event's duplicate check depends on an earlier one's ask (a full pending store, batch
  selection mode), that run goes event by event.

``request_stop()`` (thread-safe; the CLI's signal handlers call it) lets the batch in flight finish, then
the loop flushes, checkpoints, commits and closes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Final

from activestream import __version__
from activestream.aggregate import ANONYMOUS, OTHER, LabelAggregator
from activestream.assembly import drift_watch_for, learner_from_settings
from activestream.batch_parsing import parse_events
from activestream.batch_scoring import decide_batch, scores_only
from activestream.checkpoint import (
    AskJournal,
    CheckpointError,
    CheckpointState,
    JournaledAsk,
    load_checkpoint,
    save_checkpoint,
)
from activestream.config import Settings
from activestream.decide.batch import BatchSelector
from activestream.decide.budget import WindowedBudget
from activestream.decide.policies import BELOW_THRESHOLD, RANDOM
from activestream.drift.estimates import weighting_proba
from activestream.health import BrokerWatch, Health
from activestream.join import Expired, JoinResult, JoinStatus, PendingEntry, PendingStore
from activestream.learner import ActiveLearner, Decision
from activestream.messages import (
    Event,
    Label,
    Rejection,
    RejectReason,
    dead_letter_headers,
    decision_record_for,
    fit_dead_letter,
    label_request_for,
    parse_event,
    parse_label,
    to_json,
)
from activestream.metrics import MAX_ANNOTATOR_SERIES, Metrics
from activestream.stopping import CRITERIA, StoppingMonitor
from activestream.transport.base import Admin, Consumer, Message, Producer, TopicPartition
from activestream.transport.errors import BrokerUnavailable, DeliveryError, TransportError
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
#: The audit-trail reason of an ask held back by the stopping criteria (pause or label cap).
PAUSED: Final = "paused"


#: A model's error message goes into the dead letter's reason header, cut to this length.
_MAX_REASON_CHARS = 300


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _probability_fits(decision: Decision) -> bool:
    """Whether a decision's ``ask_proba`` can be the probability of what happened: in ``(0, 1]`` for an
    ask (its label is weighted by ``1/p``), in ``[0, 1]`` for a discard. Else a policy's bug: the
    request and the audit record carry no probability rather than a wrong one."""
    p = decision.ask_proba
    assert p is not None
    return weighting_proba(p) is not None if decision.ask else 0.0 <= p <= 1.0


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
        self._ttl_ms = settings.label_ttl_seconds * 1000
        self._guard = DeadLetterGuard(
            settings.dead_letter_max_ratio, settings.dead_letter_window, settings.dead_letter_max_consecutive
        )
        self._stop = threading.Event()
        self._started = False
        self._closed = False
        # State covered by checkpoints (restored in ``start``).
        self.learner: ActiveLearner = learner or learner_from_settings(settings)  # or the checkpoint's
        #: Drift detection and reactions around the learner (rebuilt around a restored one).
        self.watch = drift_watch_for(self.learner, settings)
        self.pending = PendingStore(settings.pending_max, self._ttl_ms)
        self.model_version = 0
        #: Stopping criteria; its label count and pause survive restarts through the checkpoint's counters.
        self.stopping = StoppingMonitor(
            plateau_window=settings.stopping_window,
            plateau_epsilon=settings.stopping_epsilon,
            max_labels=settings.max_labels or None,
            pause_on_signal=settings.stop_on_plateau,
            seed=settings.seed,
        )
        #: Votes of requests sent to several annotators (kept in the pending store, hence checkpointed).
        self.ballots: LabelAggregator | None = None
        self._attach_ballots()
        #: Batch mode: the window of held events (not checkpointed: held events are replayed, see _hold).
        self.batch: BatchSelector | None = None
        if settings.selection_mode == "batch":
            span = settings.batch_window_seconds
            self.batch = BatchSelector(
                settings.budget,
                settings.batch_window,
                span_ms=round(span * 1000) if span > 0 else None,
                diversity=settings.batch_diversity,
                seed=settings.seed,
            )
        #: Batch mode: the fraction of events picked, as the per-event policies estimate their spending.
        self.batch_spending = WindowedBudget(settings.budget)
        # Held events by id: their partition, offset, event and scored decision, until their window closes.
        self._held: dict[str, tuple[TopicPartition, int, Event, Decision]] = {}
        self._released: set[TopicPartition] = set()  # partitions of held events decided this batch
        self._top_annotators: frozenset[str] = frozenset()
        #: Next offset to process, per partition the state covers.
        self._positions: dict[TopicPartition, int] = {}
        # Loop bookkeeping.
        self._assigned: set[TopicPartition] = set()
        self._replay_end: dict[TopicPartition, int] = {}
        self._deferred: list[tuple[Message, Label]] = []
        self._threshold = float("nan")
        self._dirty = False  # processed messages since the last checkpoint
        self._uncovered = False  # partitions assigned that no checkpoint covers yet
        self._consistent = True  # every record produced so far is flushed (false while a batch runs)
        self._last_checkpoint_ms = 0
        self._last_health_check_ms: int | None = None
        # The ask journal: this batch's asks and records to produce after them (in order), and the asks
        # restored at start whose events have not been replayed yet, by event id.
        self._journal = AskJournal(AskJournal.path_for(settings.checkpoint_path))
        self._journal_generation = 0
        self._asks: list[JournaledAsk] = []
        self._outbox: list[tuple[str, bytes, bytes | None]] = []
        self._journaled: dict[str, JournaledAsk] = {}

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
        self._recover_asks()
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
        arms = self.watch.status()
        if arms is not None:
            self.metrics.adaptation(arms.detector)
        self.metrics.up(True)
        if self._broker_watch is not None:
            self._broker_watch.start()
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
        if self._broker_watch is not None:
            self._broker_watch.stop()
        self._journal.close()
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
        if self._batch_scoring():
            self._handle_batch(messages, now_ms)
        else:
            for message in messages:
                self._handle(message, now_ms)
        touched = {message.topic_partition for message in messages}
        self._tick_window(now_ms)
        touched |= self._released
        self._released = set()
        touched |= self._retry_deferred(now_ms)
        self._publish()
        self._flush()
        self._consistent = True
        if (
            self._uncovered
            or now_ms - self._last_checkpoint_ms >= self.settings.checkpoint_interval_seconds * 1000
        ):
            self._checkpoint(now_ms)
        self._commit(touched)
        self._after_batch(now_ms, started)
        return len(messages)

    def _flush(self) -> None:
        """Wait until the batch's records are acknowledged.

        While the broker is away the records are only *unacknowledged*: the producer keeps retrying
        them (until its delivery timeout, when they fail), so the loop waits on instead of dying when an
        outage outlasts ``flush_timeout_seconds``. It waits in slices of at most
        ``health_check_interval_seconds``, checking the broker and beating in between, so that
        ``/readyz`` follows the broker and ``/healthz`` stays up meanwhile. A failed record, or a stop
        requested and ``flush_timeout_seconds`` over, raises: no checkpoint, no commit, a restart replays.
        """
        s = self.settings
        slice_s = min(s.flush_timeout_seconds, s.health_check_interval_seconds)
        waited_s = 0.0
        while True:
            try:
                self.producer.flush(slice_s)
                return
            except DeliveryError as error:
                waited_s += slice_s
                if error.failures or not error.unacknowledged:
                    raise
                if waited_s >= s.flush_timeout_seconds:
                    if self._stop.is_set():
                        raise
                    log.warning("broker unavailable", extra={"error": str(error), "waited_s": waited_s})
                    waited_s = 0.0
                self.health.beat()
                self._check_broker()

    def _handle(self, message: Message, now_ms: int) -> None:
        if message.topic == self.settings.events_topic:
            rejection = self._on_event(message, now_ms)
        else:
            rejection = self._on_label(message, now_ms)
        self._handled(message, rejection)

    def _handled(self, message: Message, rejection: Rejection | None) -> None:
        """Dead-letter or count a handled message, and move its partition's position past it."""
        if rejection is None:
            self._guard.record(False)
        else:
            self._dead_letter(message, rejection)
        tp = message.topic_partition
        self._positions[tp] = message.offset + 1
        self._dirty = True
        if tp in self._replay_end and message.offset + 1 >= self._replay_end[tp]:
            del self._replay_end[tp]

    # -- batch scoring ----------------------------------------------------------------------------------
    def _batch_scoring(self) -> bool:
        """Whether to parse and score runs of events together (``batch_scoring``).

        Not with labels aggregated over several annotators: there, an ask that evicts an entry from a
        full pending store may learn that entry's votes, so the model could change inside a run.
        """
        return self.settings.batch_scoring == "auto" and self.ballots is None

    def _handle_batch(self, messages: Iterable[Message], now_ms: int) -> None:
        """Handle a poll's messages in order; each run of events between two labels as one batch.

        The model changes only when it learns a label, so within a run it is the same for every event;
        the policy still decides event by event, in order.
        """
        run: list[Message] = []
        for message in messages:
            if message.topic == self.settings.events_topic:
                run.append(message)
                continue
            self._on_events(run, now_ms)
            run = []
            self._handle(message, now_ms)
        self._on_events(run, now_ms)

    def _on_events(self, run: list[Message], now_ms: int) -> None:
        """Parse a run of event messages together, then decide it in segments of distinct event ids.

        A segment ends before an id already in it: whether the second is a duplicate depends on the
        first one's decision.
        """
        s = self.settings
        parsed = parse_events([m.value for m in run], s.max_message_bytes, s.max_features)
        start, seen = 0, set()
        for i, event in enumerate(parsed):
            if isinstance(event, Event):
                if event.id in seen:
                    self._on_segment(run[start:i], parsed[start:i], now_ms)
                    start, seen = i, set()
                seen.add(event.id)
        self._on_segment(run[start:], parsed[start:], now_ms)

    def _on_segment(self, run: list[Message], parsed: list[Event | Rejection], now_ms: int) -> None:
        """What ``_on_event`` does for each message of the segment, in order, with the scoring batched."""
        if not run:
            return
        duplicates = any(
            isinstance(e, Event)
            and e.id not in self._journaled
            and (self.pending.knows_event(e.id) or e.id in self._held)
            for e in parsed
        )
        may_forget = self.batch is not None or len(self.pending) + len(run) > self.settings.pending_max
        if duplicates and may_forget:
            # An earlier event's ask may evict from a full pending store (which then forgets old event ids)
            # or close a batch window (releasing held ids): the duplicate check must follow each event.
            for message in run:
                self._handle(message, now_ms)
            return
        # What each event is, in the order _on_event checks it.
        kinds: list[str] = []
        to_decide: list[Event] = []
        for event in parsed:
            if not isinstance(event, Event):
                kinds.append("invalid")
            elif self._journaled.pop(event.id, None) is not None:
                kinds.append("journaled")
                to_decide.append(event)
            elif self.pending.knows_event(event.id) or event.id in self._held:
                kinds.append("duplicate")
            else:
                kinds.append("decide")
                to_decide.append(event)
        decisions = iter(self._decide_run(to_decide))
        outcomes = dict.fromkeys(("asked", "discarded", "invalid"), 0)
        for message, event, kind in zip(run, parsed, kinds, strict=True):
            rejection: Rejection | None = None
            if kind == "invalid":
                assert isinstance(event, Rejection)
                rejection = event
            elif kind == "duplicate":
                rejection = Rejection(RejectReason.DUPLICATE, "an event with this id was asked about already")
            else:
                assert isinstance(event, Event)
                decision = next(decisions)
                if isinstance(decision, Rejection):
                    rejection = decision
                elif kind == "journaled":
                    self.stopping.observe(event.features)
                    outcomes["asked"] += 1
                elif self.batch is not None:
                    self._hold(message, event, decision, now_ms)
                else:
                    outcomes[self._conclude_decision(event, decision, now_ms, count=False)] += 1
            if rejection is not None:
                outcomes["invalid"] += 1
            self._handled(message, rejection)
        for outcome, count in outcomes.items():
            self.metrics.event(outcome, count)

    def _decide_run(self, events: list[Event]) -> list[Decision | Rejection]:
        """``_decide`` of each event, the scoring done for all of them at once."""
        if not events:
            return []
        started = self._timer()
        rows = [event.features for event in events]
        if self.batch is not None:
            results = scores_only(self.learner, rows)
        else:
            results = decide_batch(self.learner, rows, self._observe_score)
        self.metrics.processing((self._timer() - started) / len(events), len(events))  # the run's mean
        decisions: list[Decision | Rejection] = []
        for result in results:
            if isinstance(result, Exception):
                decisions.append(self._model_rejection(result))
                continue
            decisions.append(result)
            if self.batch is not None:
                self._observe_score(result.score)
            else:
                self._threshold = result.threshold
        return decisions

    # -- events -----------------------------------------------------------------------------------------
    def _on_event(self, message: Message, now_ms: int) -> Rejection | None:
        s = self.settings
        event = parse_event(message.value, s.max_message_bytes, s.max_features)
        if isinstance(event, Event) and self._journaled.pop(event.id, None) is not None:
            # Asked before the restart (see _recover_asks) and published: it stays asked. The policy still
            # sees it, so that its budget and threshold follow the first run's (they did, unless it flips).
            self._decide(event)
            self.stopping.observe(event.features)
            self.metrics.event("asked")
            return None
        if isinstance(event, Event) and (self.pending.knows_event(event.id) or event.id in self._held):
            event = Rejection(RejectReason.DUPLICATE, "an event with this id was asked about already")
        decision = event if isinstance(event, Rejection) else self._decide(event)
        if isinstance(decision, Rejection):
            self.metrics.event("invalid")
            return decision
        assert isinstance(event, Event)  # a decision is only made for a parsed event
        if self.batch is not None:
            self._hold(message, event, decision, now_ms)
        else:
            self._conclude_decision(event, decision, now_ms)
        return None

    def _conclude_decision(self, event: Event, decision: Decision, now_ms: int, count: bool = True) -> str:
        """Ask or discard (the stopping criteria may hold an ask back), and record it in the audit trail.

        Returns the outcome, ``"asked"`` or ``"discarded"``; counted in the metrics unless ``count`` is
        false (the batch path counts a run's outcomes at once).
        """
        if decision.ask and not self.stopping.allows(decision.reason):
            decision = dataclasses.replace(decision, ask=False, reason=PAUSED)
        if decision.ask_proba is not None and (self.stopping.paused or not _probability_fits(decision)):
            # Paused, only random requests go out: an event's chance of a request is no longer the
            # policy's, and is not known, so its label is not weighted (the random sample still counts).
            decision = dataclasses.replace(decision, ask_proba=None)
        s = self.settings
        audit: tuple[str, bytes, bytes | None] | None = None
        if s.decisions_topic and (decision.ask or self._audit_discard(event.id)):
            record = decision_record_for(event.id, decision, model_version=self.model_version)
            audit = (s.decisions_topic, to_json(record), event.id.encode())
        if decision.ask:
            self._ask(event, decision, now_ms, audit)
            self.stopping.on_ask()
        elif audit is not None:
            self._outbox.append(audit)
        if count:
            self.metrics.event("asked" if decision.ask else "discarded")
        self.stopping.observe(event.features)
        return "asked" if decision.ask else "discarded"

    def _audit_discard(self, event_id: str) -> bool:
        """Whether a discard is in the audit trail's sample: a hash of (seed, event id), so replay-stable."""
        ratio = self.settings.decisions_discard_sample_ratio
        if ratio >= 1.0:
            return True
        digest = hashlib.blake2b(f"{self.settings.seed}:{event_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") < ratio * 2**64

    def _decide(self, event: Event) -> Decision | Rejection:
        started = self._timer()
        try:
            # Batch mode scores only: the window decides (the policy and its budget are not used).
            decision = self._score(event) if self.batch is not None else self.learner.decide(event.features)
        except Exception as error:  # e.g. a feature type the model cannot take: that event, not the loop
            return self._model_rejection(error)
        self.metrics.processing(self._timer() - started)
        if self.batch is None:
            self._threshold = decision.threshold
        self._observe_score(decision.score)
        return decision

    @staticmethod
    def _model_rejection(error: Exception) -> Rejection:
        log.warning("model rejected an event", extra={"error": repr(error)})
        return Rejection(
            RejectReason.SCHEMA, f"the model cannot score these features: {type(error).__name__}"
        )

    def _observe_score(self, score: float) -> None:
        """Feed a score to the label-free drift signal (it may boost the policy: call between decisions)."""
        if self.watch.observe_score(score):
            self.metrics.label_free_alarm()
            log.info("label-free drift alarm", extra={"score": score})

    def _score(self, event: Event) -> Decision:
        """Batch mode: the model's prediction and the measure's score, no ask decision yet."""
        learner = self.learner
        proba = dict(learner.classifier.predict_proba_one(event.features))
        score = learner.informativeness.score(event.features, proba, learner.classifier)
        y_pred = max(proba, key=proba.__getitem__) if proba else None
        strategy = f"{learner.strategy.partition('/')[0]}/batch"
        return Decision(y_pred, proba, score, float("nan"), False, strategy, BELOW_THRESHOLD)

    # -- batch mode -------------------------------------------------------------------------------------
    def _hold(self, message: Message, event: Event, decision: Decision, now_ms: int) -> None:
        """Hold a scored event in the window; decide the window if this closed it.

        At-least-once: a held event's offset is not committed (nor checkpointed) before its window is
        decided (``_safe_offset``), so a restart or a rebalance replays the open window's events into a
        fresh window (the selector keeps no other state that matters: its scaling is per window). A
        shutdown leaves the open window undecided for the same reason.
        """
        assert self.batch is not None
        before = len(self.batch)
        self.batch.offer(event.id, event.features, decision.score, now_ms)
        self._held[event.id] = (message.topic_partition, message.offset, event, decision)
        if len(self.batch) != before + 1:  # a window closed (by size, or by time before this event)
            self._decide_window(now_ms)

    def _tick_window(self, now_ms: int) -> None:
        """Batch mode: close the window when its time span has passed, even without new events."""
        if self.batch is None or not len(self.batch):
            return
        self.batch.tick(now_ms)
        if not len(self.batch):
            self._decide_window(now_ms)

    def _decide_window(self, now_ms: int) -> None:
        assert self.batch is not None
        chosen = {pick.event_id: pick for pick in self.batch.last_picks}
        self._threshold = self.batch.threshold
        for event_id in self.batch.last_window:
            held = self._held.pop(event_id, None)
            if held is None:  # forgotten on a rebalance
                continue
            tp, _, event, decision = held
            pick = chosen.get(event_id)
            # The threshold of every event of the window is the window's cut: the smallest gain chosen.
            decision = dataclasses.replace(decision, threshold=self.batch.threshold)
            if pick is not None:
                decision = dataclasses.replace(decision, ask=True, reason=pick.reason)
            self.batch_spending.record(pick is not None)
            self._conclude_decision(event, decision, now_ms)
            self._released.add(tp)

    def _ask(
        self, event: Event, decision: Decision, now_ms: int, audit: tuple[str, bytes, bytes | None] | None
    ) -> None:
        request = label_request_for(
            event, decision, model_version=self.model_version, now_ms=now_ms, ttl_ms=self._ttl_ms
        )
        evicted = self.pending.add(
            request.request_id,
            event.id,
            event.features,
            now_ms,
            decision.reason,
            decision.y_pred,
            decision.ask_proba,
        )
        self.metrics.pending_expired("evicted", len(self._conclude_expired(evicted, now_ms)))
        records = ((self.settings.requests_topic, to_json(request), event.id.encode()),)
        records += (audit,) if audit is not None else ()
        entry = self.pending.find(request_id=request.request_id)
        if entry is not None:  # (evicted at once only with a pending store of size 0, which cannot be)
            self._asks.append(JournaledAsk(entry, records))
        self._outbox.extend(records)
        self.metrics.label_request()

    def _publish(self) -> None:
        """Journal the batch's asks (durably), then produce its requests and audit records, in order."""
        asks, self._asks = self._asks, []
        self._journal.append(asks)  # raises CheckpointError: nothing of this batch was published
        records, self._outbox = self._outbox, []
        for topic, value, key in records:
            self.producer.produce(topic, value, key)

    def _recover_asks(self) -> None:
        """Give the asks journaled after the checkpoint back to the pending store and publish them again.

        Their events come again in the replay; they are not decided again (``_journaled``).
        """
        now_ms = self._clock_ms()
        for ask in self._journal.recover(self._journal_generation):
            entry = ask.entry
            self._journaled[entry.event_id] = ask
            if not self.pending.knows_event(entry.event_id):
                evicted = self.pending.add(
                    entry.request_id,
                    entry.event_id,
                    entry.features,
                    entry.asked_at_ms,
                    entry.decision_reason,
                    entry.predicted_label,
                    entry.ask_proba,
                )
                self.metrics.pending_expired("evicted", len(self._conclude_expired(evicted, now_ms)))
                self.stopping.on_ask()
                self._dirty = True  # the next checkpoint covers them
            elif entry.request_id not in self.pending:
                continue  # answered or expired since (an ask carried over a later checkpoint)
            for topic, value, key in ask.records:
                self.producer.produce(topic, value, key)
                if topic == self.settings.requests_topic:
                    self.metrics.label_request()
        if self._journaled:
            log.info("asks recovered from the journal", extra={"asks": len(self._journaled)})

    # -- labels -----------------------------------------------------------------------------------------
    def _on_label(self, message: Message, now_ms: int) -> Rejection | None:
        label = parse_label(message.value, self.settings.max_message_bytes)
        if isinstance(label, Rejection):
            self.metrics.label("invalid")
            return label
        entry = self._voting_entry(label, now_ms)
        if entry is not None:
            return self._vote(entry, label, now_ms)
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
        unbiased, ask_proba = entry.decision_reason == RANDOM, weighting_proba(entry.ask_proba)
        try:
            drifted = self.watch.learn(entry.features, y, unbiased=unbiased, ask_proba=ask_proba)
        except Exception as error:
            log.warning("model rejected a label", extra={"error": repr(error)})
            return Rejection(
                # The message says which label and what to do (e.g. a binary model given a third class).
                RejectReason.UNEXPECTED_LABEL,
                f"the model cannot learn it: {type(error).__name__}: {error}"[:_MAX_REASON_CHARS],
            )
        self.model_version += 1
        self.metrics.learned(y, delay_ms / 1000)
        # The accuracy estimates: the random sample, and every label whose ask probability is known.
        correct = entry.predicted_label == y
        if unbiased:
            self.metrics.judged(correct)
        if ask_proba is not None:
            self.metrics.judged_weighted(correct, ask_proba)
        self.stopping.on_label(correct, unbiased=unbiased, ask_proba=ask_proba)
        self.stopping.check_stability(self.model_version, self.learner.classifier.predict_one)
        if drifted:
            self._on_drift()
        return None

    def _on_drift(self) -> None:
        arms = self.watch.status()
        assert arms is not None  # only the adaptation arms detect drifts
        self.metrics.drift(arms.detector, self._clock_ms() / 1000)
        log.info("drift detected", extra={"detector": arms.detector, "model_version": self.model_version})
        if self.settings.resume_on_drift:
            self.resume_label_requests()

    # -- several annotators -----------------------------------------------------------------------------
    def _attach_ballots(self) -> None:
        """Share the pending store's ballots (checkpointed with it) when labels are aggregated."""
        s = self.settings
        if s.annotators_per_request == 1:
            self.ballots = self.pending.ballots = None
            return
        ballots = self.pending.ballots
        if not isinstance(ballots, LabelAggregator):
            timeout = s.aggregation_timeout_seconds
            ballots = LabelAggregator(weighted=s.aggregation_weighted)
            ballots.timeout_ms = round(timeout * 1000) if timeout > 0 else None
        ballots.needed = s.annotators_per_request
        ballots.weighted = s.aggregation_weighted
        self.ballots = self.pending.ballots = ballots

    def _voting_entry(self, label: Label, now_ms: int) -> PendingEntry | None:
        """The pending, unexpired entry a label votes on, when labels are aggregated."""
        if self.ballots is None:
            return None
        entry = self.pending.find(request_id=label.request_id, event_id=label.event_id)
        return entry if entry is not None and now_ms < entry.expires_at_ms else None

    def _vote(self, entry: PendingEntry, label: Label, now_ms: int) -> Rejection | None:
        assert self.ballots is not None
        status = self.ballots.add(entry.request_id, label.annotator, label.label, now_ms)
        if status == "duplicate":
            self.metrics.label(JoinStatus.DUPLICATE.value)
            return Rejection(RejectReason.DUPLICATE, "this annotator labeled this request already")
        name = label.annotator or ANONYMOUS
        self.metrics.annotator_label(name if name in self._top_annotators else OTHER)
        # Every vote accepted into a consensus counts as learned: the consensus is learned once for all.
        self.metrics.label(JoinStatus.LEARNED.value)
        if status == "complete":
            result = self.pending.join(now_ms, request_id=entry.request_id)
            if result.entry is not None:
                return self._learn_consensus(result.entry, now_ms)
        return None

    def _learn_consensus(self, entry: PendingEntry, now_ms: int) -> Rejection | None:
        """Aggregate an entry's votes and learn the consensus (once: the ballot is closed here)."""
        assert self.ballots is not None
        consensus = self.ballots.close(entry.request_id)
        if consensus is None:
            return None
        if not consensus.unanimous:
            self.metrics.disagreement()
            votes = {vote.annotator: repr(vote.label) for vote in consensus.ballot}
            log.info(
                "annotators disagreed",
                extra={
                    "request_id": entry.request_id,
                    "event_id": entry.event_id,
                    "votes": votes,
                    "consensus": repr(consensus.label),
                    "tie_rule": consensus.tie_rule,
                },
            )
        return self._learn(entry, consensus.label, now_ms - entry.asked_at_ms)

    def _conclude_expired(self, expired: list[Expired], now_ms: int) -> list[Expired]:
        """Learn the votes of requests that left the store (TTL, eviction); return those with none."""
        if self.ballots is None:
            return expired
        unanswered = []
        for gone in expired:
            if self.ballots.votes(gone.entry.request_id):
                self._learn_consensus(gone.entry, now_ms)
            else:
                self.ballots.discard(gone.entry.request_id)
                unanswered.append(gone)
        return unanswered

    def _aggregate_due(self, now_ms: int) -> None:
        """Learn what the ballots past ``aggregation_timeout_seconds`` have."""
        if self.ballots is None:
            return
        for request_id in self.ballots.due(now_ms):
            result = self.pending.join(now_ms, request_id=request_id)
            if result.entry is not None:
                self._learn_consensus(result.entry, now_ms)
            else:
                self.ballots.discard(request_id)

    def resume_label_requests(self) -> None:
        """Resume label requests paused by the stopping criteria (the drift detectors' hook)."""
        self.stopping.resume()

    def _retry_deferred(self, now_ms: int) -> set[TopicPartition]:
        if not self._deferred or self._replay_end:
            return set()
        deferred, self._deferred = self._deferred, []
        for message, label in deferred:
            entry = self._voting_entry(label, now_ms)
            if entry is not None:
                rejection = self._vote(entry, label, now_ms)
            else:
                result = self.pending.join(now_ms, request_id=label.request_id, event_id=label.event_id)
                rejection = self._settle(label, result)
            if rejection is not None:  # (it counted as accepted when it was held back)
                self._dead_letter(message, rejection)
        return {message.topic_partition for message, _ in deferred}

    # -- dead letters -----------------------------------------------------------------------------------
    def _dead_letter(self, message: Message, rejection: Rejection) -> None:
        value, truncated = fit_dead_letter(message.value or b"", self.settings.max_message_bytes)
        headers = (
            message.headers
            + dead_letter_headers(rejection, message.topic, message.partition, message.offset)
            + truncated
        )
        self.producer.produce(self.settings.dead_letter_topic, value, message.key, headers)
        self.metrics.dead_letter(rejection.reason.value)
        log.debug(
            "dead-lettered",
            extra={"reason": rejection.reason.value, "topic": message.topic, "offset": message.offset},
        )
        self._guard.record(True, rejection.reason.value)

    # -- offsets, checkpoints, rebalances ---------------------------------------------------------------
    def _safe_offset(self, tp: TopicPartition) -> int:
        """The next offset to read, but never past a label held back or an event held in a batch window."""
        held = [m.offset for m, _ in self._deferred if m.topic_partition == tp]
        held += [offset for held_tp, offset, _, _ in self._held.values() if held_tp == tp]
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
        if not ((self._dirty or self._uncovered) and self._consistent) or self._deferred:
            return  # nothing new, records not flushed, or a replay not settled yet: the old one is right
        correct, judged = self.metrics.accuracy_counts
        ipw_correct, ipw_weight, ipw_judged = self.metrics.weighted_accuracy_counts
        paused_by = self.stopping.paused_by
        generation = secrets.randbits(62) + 1  # the ask journal that continues this checkpoint
        state = CheckpointState(
            learner=self.learner,
            pending=self.pending,
            drift_signal=self.watch.label_free,
            # Events held in a batch window are not covered: a restart replays them (see _hold).
            offsets={tp: self._safe_offset(tp) for tp in self._positions},
            model_version=self.model_version,
            counters={
                "prequential_correct": correct,
                "prequential_judged": judged,
                "prequential_ipw_correct": ipw_correct,
                "prequential_ipw_weight": ipw_weight,
                "prequential_ipw_judged": ipw_judged,
                "stopping_asked": self.stopping.asked,
                "stopping_paused_by": CRITERIA.index(paused_by) + 1 if paused_by in CRITERIA else 0,
                "ask_journal": generation,
            },
            created_at_ms=now_ms,
        )
        try:
            size = save_checkpoint(self.settings.checkpoint_path, state)
        except CheckpointError:
            return  # logged by save_checkpoint; checkpoint_age_seconds keeps growing for the alert
        # Raises CheckpointError: appending to the old journal would lose asks at the next restart.
        self._journal_generation = generation
        carried = [a for a in self._journaled.values() if a.entry.expires_at_ms > now_ms]
        self._journal.reset(generation, carried)  # events not replayed yet must not be decided again
        self._dirty = self._uncovered = False
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
        self.watch = drift_watch_for(self.learner, self.settings, state.drift_signal)
        self._journal_generation = state.counters.get("ask_journal", 0)
        self._positions = dict(state.offsets)
        counters = state.counters  # (a checkpoint from before a counter existed: 0)
        self.metrics.restore_accuracy(
            int(counters.get("prequential_correct", 0)),
            int(counters.get("prequential_judged", 0)),
            float(counters.get("prequential_ipw_correct", 0.0)),
            float(counters.get("prequential_ipw_weight", 0.0)),
            int(counters.get("prequential_ipw_judged", 0)),
        )
        self.stopping.asked = state.counters.get("stopping_asked", 0)
        paused_by = state.counters.get("stopping_paused_by", 0)
        if paused_by and self.settings.stop_on_plateau:
            self.stopping.paused_by = CRITERIA[paused_by - 1]
        self._attach_ballots()
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
                # Not covered by our state: start at the group's offset, and checkpoint that before the
                # first commit past it. Otherwise a crash before the first interval's checkpoint would
                # restart at offsets committed after learning, with a model that never learned.
                self._positions[tp] = 0 if committed is None else committed
                self._uncovered = True
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
            self._positions[tp] = self._safe_offset(tp)  # held-back labels and held events are read again
        gone = [event_id for event_id, (tp, _, _, _) in self._held.items() if tp in partitions]
        if gone and self.batch is not None:
            self.batch.remove(gone)
            for event_id in gone:
                del self._held[event_id]
        self._deferred = [(m, label) for m, label in self._deferred if m.topic_partition not in partitions]
        for tp in partitions:
            self._replay_end.pop(tp, None)
        self._assigned -= partitions
        self.health.set_assigned(bool(self._assigned))
        self.metrics.forget_partitions(partitions)

    # -- bookkeeping ------------------------------------------------------------------------------------
    def _expire(self, now_ms: int) -> None:
        expired = self._conclude_expired(self.pending.expire(now_ms), now_ms)
        self.metrics.pending_expired("ttl", len(expired))
        self._aggregate_due(now_ms)

    def _after_batch(self, now_ms: int, started: float) -> None:
        self.metrics.batch(self._timer() - started)
        self.metrics.pending(len(self.pending))
        spent = self.learner.spending if self.batch is None else self.batch_spending.spending
        self.metrics.policy_state(self._threshold, self.learner.threshold_policy.budget, spent)
        arms = self.watch.status()
        if arms is not None:
            accuracy = {"active": arms.accuracy_active, "passive": arms.accuracy_passive}
            self.metrics.arms(accuracy, arms.serving, arms.labels_since_drift, arms.champion_switches)
        self.metrics.stopping(self.stopping.signals, self.stopping.paused)
        if self.ballots is not None:
            history = self.ballots.history
            top = history.top(MAX_ANNOTATOR_SERIES)
            self._top_annotators = frozenset(top)
            ratios = {name: history.raw_agreement(name) for name in top}
            self.metrics.annotator_agreement(
                {**ratios, OTHER: history.others_agreement(MAX_ANNOTATOR_SERIES)}
            )
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
        self.metrics.lag({tp: lag for tp, lag in lags.items() if tp in self._assigned})
        for tp, lag in lags.items():
            if lag == 0:  # at the end of the log: nothing left to replay (even if retention deleted some)
                self._replay_end.pop(tp, None)
