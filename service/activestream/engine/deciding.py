"""The events path of the engine: parse, score, decide once, ask or discard.

An event is decided once. A replay after a crash gives back the journaled decision of an event decided
before (``replay``): the policy still sees the event, so its budget and threshold follow the first run,
and is then told what was decided (``Policy.overrule``), so that spending counts what was really asked.
Only first decisions are counted in the metrics and produce records.

In batch (annotators') selection mode events are held in a window and decided when it closes; a held
event's message is handed back to the loop (``released``) so that its offset is committed only then.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Final

from activestream.batch_parsing import parse_events
from activestream.batch_scoring import decide_batch, scores_only
from activestream.config import Settings
from activestream.decide.base import Verdict
from activestream.decide.batch import BatchSelector
from activestream.decide.budget import WindowedBudget
from activestream.decide.policies import BELOW_THRESHOLD
from activestream.drift.estimates import weighting_proba
from activestream.engine.state import EngineState
from activestream.engine.step import Incoming, Outbox, Record
from activestream.engine.training_log import ask_record
from activestream.join import Expired, PendingEntry
from activestream.learner import Decision
from activestream.messages import (
    Event,
    Rejection,
    RejectReason,
    parse_event,
    to_json,
)
from activestream.metrics import Metrics
from activestream.outgoing import decision_record_for, label_request_json

__all__ = ["PAUSED", "Decider"]

log = logging.getLogger(__name__)

#: The audit-trail reason of an ask held back by the stopping criteria (pause or label cap).
PAUSED: Final = "paused"

_DUPLICATE: Final = Rejection(RejectReason.DUPLICATE, "an event with this id was asked about already")


def _probability_fits(decision: Decision) -> bool:
    """Whether a decision's ``ask_proba`` can be the probability of what happened: in ``(0, 1]`` for an
    ask (its label is weighted by ``1/p``), in ``[0, 1]`` for a discard. Else a policy's bug: the
    request and the audit record carry no probability rather than a wrong one."""
    p = decision.ask_proba
    assert p is not None
    return weighting_proba(p) is not None if decision.ask else 0.0 <= p <= 1.0


def _refused(reason: str) -> Rejection:
    return Rejection(RejectReason.SCHEMA, reason)


def model_rejection(error: Exception) -> Rejection:
    log.warning("model rejected an event", extra={"error": repr(error)})
    return Rejection(RejectReason.SCHEMA, f"the model cannot score these features: {type(error).__name__}")


class Decider:
    """Decides events: ``on_events`` returns, for each message, ``None`` (handled) or its ``Rejection``."""

    def __init__(
        self,
        settings: Settings,
        state: EngineState,
        outbox: Outbox,
        metrics: Metrics,
        timer: Callable[[], float],
        on_evicted: Callable[[list[Expired], int], None],
    ):
        self.settings, self.state, self.outbox, self.metrics, self._timer = (
            settings,
            state,
            outbox,
            metrics,
            timer,
        )
        #: Concludes the requests a full pending store evicted (the learning side learns their votes).
        self._on_evicted = on_evicted
        self._ttl_ms = settings.label_ttl_seconds * 1000
        self._carried = settings.carried_header_names
        #: The journaled decision of each event decided before a restart and not replayed yet: its pending
        #: entry when it was asked, ``None`` when it was discarded.
        self.replay: dict[str, PendingEntry | None] = {}
        #: The policy's threshold at the last decision (a gauge).
        self.threshold = float("nan")
        #: Batch mode: the window, the fraction of events picked, and the held events by id.
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
        self.batch_spending = WindowedBudget(settings.budget)
        self.held: dict[str, tuple[Incoming, Event, Decision]] = {}
        #: Messages of held events decided since the loop last took them.
        self.released: list[Incoming] = []

    @property
    def spending(self) -> float:
        return self.state.learner.spending if self.batch is None else self.batch_spending.spending

    # -- a run of events ---------------------------------------------------------------------------------
    def on_events(
        self, messages: Sequence[Incoming], now_ms: int, *, batched: bool
    ) -> list[Rejection | None]:
        """Decide each message's event, in order; ``batched``: parse and score runs together (same result)."""
        if not batched:
            return [self.on_event(message, now_ms) for message in messages]
        s = self.settings
        parsed = parse_events(
            [m.value for m in messages], s.max_message_bytes, s.max_features, s.max_string_chars
        )
        parsed = self._bounded_all(parsed)
        results: list[Rejection | None] = []
        start, seen = 0, set()
        for i, event in enumerate(parsed):
            # A segment ends before an id already in it: the second one's fate depends on the first's.
            if isinstance(event, Event):
                if event.id in seen:
                    results += self._segment(messages[start:i], parsed[start:i], now_ms)
                    start, seen = i, set()
                seen.add(event.id)
        return results + self._segment(messages[start:], parsed[start:], now_ms)

    def _segment(
        self, messages: Sequence[Incoming], parsed: list[Event | Rejection], now_ms: int
    ) -> list[Rejection | None]:
        """What ``on_event`` does for each message of the segment, in order, with the scoring batched."""
        if not messages:
            return []
        if self.replay and any(isinstance(e, Event) and e.id in self.replay for e in parsed):
            return [self.on_event(m, now_ms, e) for m, e in zip(messages, parsed, strict=True)]
        # One look-up per event (the hot path). Asked once here, it stays right for the whole segment when
        # the batched path runs: the segment's ids are distinct, so deciding one event cannot make another
        # known, and nothing is forgotten (no window, no eviction) unless ``may_forget``, where a known id
        # sends every event through ``on_event`` instead.
        known = self._known_all(parsed)
        may_forget = (
            self.batch is not None or len(self.state.pending) + len(messages) > self.settings.pending_max
        )
        if any(known) and may_forget:
            # An earlier event's ask may evict from a full pending store (which then forgets old event ids)
            # or close a batch window (releasing held ids): the duplicate check must follow each event.
            return [self.on_event(m, now_ms, e) for m, e in zip(messages, parsed, strict=True)]
        fresh = [e for e, seen in zip(parsed, known, strict=True) if isinstance(e, Event) and not seen]
        decisions = iter(self._decide_run(fresh))
        outcomes = dict.fromkeys(("asked", "discarded", "invalid"), 0)
        results: list[Rejection | None] = []
        discards, sample = self.outbox.discards, not self.settings.training_topic
        for message, event, seen in zip(messages, parsed, known, strict=True):
            if seen:
                event = _DUPLICATE
            result = event if isinstance(event, Rejection) else next(decisions)
            if isinstance(result, Rejection):
                outcomes["invalid"] += 1
                results.append(result)
                continue
            assert isinstance(event, Event)
            if type(result) is Verdict:  # a discard nobody audits: all ``_conclude`` would do of it
                discards.append(event.id)
                if sample:
                    self.state.stopping.observe(event.features)
                outcomes["discarded"] += 1
                results.append(None)
                continue
            if self.batch is not None:
                self._hold(message, event, result, now_ms)
            else:
                outcomes[self._conclude(message, event, result, now_ms, count=False)] += 1
            results.append(None)
        for outcome, count in outcomes.items():
            self.metrics.event(outcome, count)
        return results

    def _bounded(self, event: Event | Rejection) -> Event | Rejection:
        """The event, or its rejection when it would take a feature past ``max_categories`` values (the
        values of an accepted event are recorded at once: the next event's check depends on them)."""
        if isinstance(event, Rejection):
            return event
        reason = self.state.categories.admit_within(event.features)
        return event if reason is None else _refused(reason)

    def _bounded_all(self, parsed: list[Event | Rejection]) -> list[Event | Rejection]:
        """``_bounded`` of each parsed event, in order (one call to the bounds for the run)."""
        events = [e for e in parsed if isinstance(e, Event)]
        refused = self.state.categories.admit_all([e.features for e in events])
        if not any(refused):  # the usual run: nothing refused, nothing to rebuild
            return parsed
        refusals = iter(refused)
        return [
            e if isinstance(e, Rejection) or (reason := next(refusals)) is None else _refused(reason)
            for e in parsed
        ]

    def _known(self, event_id: str) -> bool:
        return self.state.pending.knows_event(event_id) or event_id in self.held

    def _known_all(self, parsed: Sequence[Event | Rejection]) -> list[bool]:
        """``_known`` of each parsed event's id (``False`` for a rejection), asked for all at once."""
        ids = [e.id for e in parsed if isinstance(e, Event)]
        known = self.state.pending.knows_events(ids)
        if len(ids) == len(parsed) and not self.held:  # the usual run: every record an event, none held
            return known
        knows, held = iter(known), self.held
        return [isinstance(e, Event) and (next(knows) or e.id in held) for e in parsed]

    def _decide_run(self, events: list[Event]) -> list[Decision | Verdict | Rejection]:
        """``_decide`` of each event, the scoring done for all of them at once; without an audit trail a
        discard is its policy's ``Verdict`` (``decide_batch``)."""
        if not events:
            return []
        started, learner = self._timer(), self.state.learner
        rows = [event.features for event in events]
        # The label-free signal sees each score between two decisions only when an alarm may boost the
        # policy; otherwise after the run, which the policy then decides in one go (``decide_many``).
        steers = self.state.watch.steers_policy
        results = (
            scores_only(learner, rows)
            if self.batch is not None
            else decide_batch(
                learner,
                rows,
                self._observe if steers else None,
                after_run=None if steers else self._observe,
                verdicts_for_discards=not self.settings.decisions_topic,
            )
        )
        self.metrics.processing((self._timer() - started) / len(events), len(events))  # the run's mean
        decisions = [model_rejection(r) if isinstance(r, Exception) else r for r in results]
        decided = [d for d in decisions if not isinstance(d, Rejection)]
        if self.batch is not None:
            for decision in decided:
                self._observe(decision.score)
        elif decided:
            self.threshold = decided[-1].threshold
        return decisions

    # -- one event ---------------------------------------------------------------------------------------
    def on_event(
        self, message: Incoming, now_ms: int, event: Event | Rejection | None = None
    ) -> Rejection | None:
        """Decide one message's event (``event``: already parsed)."""
        s = self.settings
        if event is None:
            parsed = parse_event(message.value, s.max_message_bytes, s.max_features, s.max_string_chars)
            event = self._bounded(parsed)
        if isinstance(event, Event) and event.id in self.replay:
            return self._replayed(event)
        if isinstance(event, Event) and self._known(event.id):
            event = _DUPLICATE
        decision = event if isinstance(event, Rejection) else self._decide(event)
        if isinstance(decision, Rejection):
            self.metrics.event("invalid")
            return decision
        assert isinstance(event, Event)  # a decision is only made for a parsed event
        if self.batch is not None:
            self._hold(message, event, decision, now_ms)
        else:
            self._conclude(message, event, decision, now_ms)
        return None

    def _replayed(self, event: Event) -> Rejection | None:
        """An event decided before a restart: the same decision again, nothing produced or counted.

        The policy sees the event again (its random draws and threshold follow the first run) and is
        then overruled to what was decided. An ask is in the pending store already (``Engine.recover``).
        """
        asked = self.replay.pop(event.id) is not None
        decision = self._decide(event)
        if isinstance(decision, Rejection):
            return None  # scored before, so this is the model, not the event: the first decision stands
        if self.batch is None:
            self.state.learner.threshold_policy.overrule(decision.ask, asked)
        else:
            self.batch_spending.record(asked)
        self._stopping_sample(event)
        return None

    def _decide(self, event: Event) -> Decision | Rejection:
        started, learner = self._timer(), self.state.learner
        try:
            # Batch mode scores only: the window decides (the policy and its budget are not used).
            decision = self._score(event) if self.batch is not None else learner.decide(event.features)
        except Exception as error:  # e.g. a feature type the model cannot take: that event, not the loop
            return model_rejection(error)
        self.metrics.processing(self._timer() - started)
        if self.batch is None:
            self.threshold = decision.threshold
        self._observe(decision.score)
        return decision

    def _observe(self, score: float) -> None:
        """Feed a score to the label-free drift signal (it may boost the policy: call between decisions)."""
        if self.state.watch.observe_score(score):
            self.metrics.label_free_alarm()
            log.info("label-free drift alarm", extra={"score": score})

    def _score(self, event: Event) -> Decision:
        """Batch mode: the model's prediction and the measure's score, no ask decision yet."""
        learner = self.state.learner
        proba = dict(learner.classifier.predict_proba_one(event.features))
        score = learner.informativeness.score(event.features, proba, learner.classifier)
        y_pred, proba = learner.present(proba)
        strategy = f"{learner.strategy.partition('/')[0]}/batch"
        return Decision(
            y_pred, proba, score, float("nan"), False, strategy, BELOW_THRESHOLD, None, learner.trained
        )

    def _conclude(
        self, message: Incoming, event: Event, decision: Decision, now_ms: int, count: bool = True
    ) -> str:
        """Ask or discard (the stopping criteria may hold an ask back), and record it in the audit trail.

        Returns the outcome, ``"asked"`` or ``"discarded"``; counted in the metrics unless ``count`` is
        false (the batch path counts a run's outcomes at once).
        """
        stopping = self.state.stopping
        if decision.ask and not stopping.allows(decision.reason):
            decision = dataclasses.replace(decision, ask=False, reason=PAUSED)
        if decision.ask_proba is not None and (stopping.paused or not _probability_fits(decision)):
            # Paused, only random requests go out: an event's chance of a request is no longer the
            # policy's, and is not known, so its label is not weighted (the random sample still counts).
            decision = dataclasses.replace(decision, ask_proba=None)
        headers = tuple((k, v) for k, v in message.headers if k in self._carried) if message.headers else ()
        topic = self.settings.decisions_topic
        if topic and (decision.ask or self._audit_discard(event.id)):
            record = decision_record_for(event.id, decision, model_version=self.state.model_version)
            audit = Record(topic, to_json(record), event.id.encode(), headers)
        else:
            audit = None
        if decision.ask:
            self._ask(event, decision, now_ms, headers)
            stopping.on_ask()
        else:
            self.outbox.discards.append(event.id)
        if audit is not None:
            self.outbox.emit(audit)
        if count:
            self.metrics.event("asked" if decision.ask else "discarded")
        self._stopping_sample(event)
        return "asked" if decision.ask else "discarded"

    def _stopping_sample(self, event: Event) -> None:
        """The stopping criteria's stabilising-predictions sample sees the event; with a training log it
        sees the group's requests instead, read from the log (the same sample on every replica)."""
        if not self.settings.training_topic:
            self.state.stopping.observe(event.features)

    def _audit_discard(self, event_id: str) -> bool:
        """Whether a discard is in the audit trail's sample: a hash of (seed, event id), so replay-stable."""
        ratio = self.settings.decisions_discard_sample_ratio
        if ratio >= 1.0:
            return True
        digest = hashlib.blake2b(f"{self.settings.seed}:{event_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") < ratio * 2**64

    def _ask(
        self, event: Event, decision: Decision, now_ms: int, headers: tuple[tuple[str, bytes], ...]
    ) -> None:
        state = self.state
        request_id, request = label_request_json(
            event, decision, model_version=state.model_version, now_ms=now_ms, ttl_ms=self._ttl_ms
        )
        evicted = state.pending.add(
            request_id,
            event.id,
            event.features,
            now_ms,
            decision.reason,
            decision.y_pred,
            decision.ask_proba,
        )
        self._on_evicted(evicted, now_ms)
        entry = state.pending.find(request_id=request_id)
        if entry is not None:  # (evicted at once only with a pending store of size 0, which cannot be)
            self.outbox.asks.append(entry)
            if self.settings.training_topic:  # the group's: any replica may read its label
                self.outbox.emit(ask_record(entry, self.settings.training_topic))
        self.outbox.emit(Record(self.settings.requests_topic, request, event.id.encode(), headers))
        self.metrics.label_request()

    # -- batch mode ----------------------------------------------------------------------------------------
    def _hold(self, message: Incoming, event: Event, decision: Decision, now_ms: int) -> None:
        """Hold a scored event in the window; decide the window if this closed it.

        At-least-once: a held event's offset is not committed (nor checkpointed) before its window is
        decided, so a restart or a rebalance replays the open window's events into a fresh window (the
        selector keeps no other state that matters: its scaling is per window). A shutdown leaves the
        open window undecided for the same reason.
        """
        assert self.batch is not None
        before = len(self.batch)
        self.batch.offer(event.id, event.features, decision.score, now_ms)
        self.held[event.id] = (message, event, decision)
        if len(self.batch) != before + 1:  # a window closed (by size, or by time before this event)
            self._decide_window(now_ms)

    def tick(self, now_ms: int) -> None:
        """Batch mode: close the window when its time span has passed, even without new events."""
        if self.batch is None or not len(self.batch):
            return
        self.batch.tick(now_ms)
        if not len(self.batch):
            self._decide_window(now_ms)

    def _decide_window(self, now_ms: int) -> None:
        assert self.batch is not None
        chosen = {pick.event_id: pick for pick in self.batch.last_picks}
        self.threshold = self.batch.threshold
        for event_id in self.batch.last_window:
            held = self.held.pop(event_id, None)
            if held is None:  # forgotten on a rebalance
                continue
            message, event, decision = held
            pick = chosen.get(event_id)
            # The threshold of every event of the window is the window's cut: the smallest gain chosen.
            decision = dataclasses.replace(decision, threshold=self.batch.threshold)
            if pick is not None:
                decision = dataclasses.replace(decision, ask=True, reason=pick.reason)
            self.batch_spending.record(pick is not None)
            self._conclude(message, event, decision, now_ms)
            self.released.append(message)

    def forget(self, gone: Callable[[Incoming], bool]) -> None:
        """Drop the held events whose message ``gone`` says was revoked (they are read again)."""
        ids = [event_id for event_id, (message, _, _) in self.held.items() if gone(message)]
        if ids and self.batch is not None:
            self.batch.remove(ids)
            for event_id in ids:
                del self.held[event_id]
