"""The labels path of the engine: join a label to its request, learn it once, aggregate votes.

A label is learned before its request is closed: one the model cannot learn (``"yes"`` for a binary
model) is dead-lettered with the reason and leaves the request open for a correct label. Labels learned
before a restart (``learned_before``, from the journal) are learned again by the replay — the restored
model had not seen them — but counted once.

With a training log (:mod:`activestream.engine.training_log`) a joined label is not learned here: its
example is appended to the log, once (a label joined before a restart, ``learned_before``, is not appended
again), and counted; every replica then learns the log's examples through ``apply``, once by request id.
A label whose request this replica does not hold is appended as it came (a ``label`` record); ``apply``
joins it with the group's open requests, read from the same log, and the replica that appended it counts
it, or dead-letters it (``rejected``) when it joins nothing. The requests read from the log are what
``max_labels`` counts: a cap for the group, not for each replica. With several annotators a request,
every vote goes to the log as a label record, and every replica tallies the votes in the group's store
(``group.ballots``) in the log's order: the same consensus, learned once, whichever replicas read them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from activestream.aggregate import ANONYMOUS, OTHER, LabelAggregator
from activestream.batch_scoring import predict_many
from activestream.config import Settings
from activestream.decide.policies import RANDOM
from activestream.drift.estimates import weighting_proba
from activestream.engine.state import APPLIED, LABEL_READ, EngineState
from activestream.engine.step import Incoming, Outbox
from activestream.engine.training_log import (
    Answer,
    Ask,
    Example,
    Source,
    label_record,
    source_key,
    training_record,
)
from activestream.join import Expired, JoinStatus, PendingEntry
from activestream.messages import Label, Rejection, RejectReason, parse_label
from activestream.metrics import Metrics
from activestream.types import ClassLabel

__all__ = ["DEFER", "Trainer"]

log = logging.getLogger(__name__)

_JOIN_REJECTIONS: Final = {
    JoinStatus.UNKNOWN: RejectReason.UNKNOWN_REQUEST,
    JoinStatus.EXPIRED: RejectReason.EXPIRED_REQUEST,
    JoinStatus.DUPLICATE: RejectReason.DUPLICATE,
}
#: A model's error message goes into the dead letter's reason header, cut to this length.
_MAX_REASON_CHARS: Final = 300


def _unlearnable(error: Exception) -> Rejection:
    # The message says which label and what to do (e.g. a binary model given a third class).
    return Rejection(
        RejectReason.UNEXPECTED_LABEL,
        f"the model cannot learn it: {type(error).__name__}: {error}"[:_MAX_REASON_CHARS],
    )


class _Defer:
    def __repr__(self) -> str:
        return "DEFER"


#: ``on_label``'s answer for a label of an unknown request while the loop may hold it back (a replay).
DEFER: Final = _Defer()


class Trainer:
    """Learns labels: ``on_label`` returns ``None`` (handled), a ``Rejection`` or :data:`DEFER`."""

    def __init__(
        self,
        settings: Settings,
        state: EngineState,
        outbox: Outbox,
        metrics: Metrics,
        on_drift: Callable[[int], None],  # called with now_ms
    ):
        self.settings, self.state, self.outbox, self.metrics = settings, state, outbox, metrics
        self._on_drift = on_drift
        #: Request ids learned before a restart, not learned again by the replay yet.
        self.learned_before: set[str] = set()
        #: Annotators with a series of their own (the most active ones).
        self.top_annotators: frozenset[str] = frozenset()
        #: Who this replica is in the training log's label records (it dead-letters its own).
        self.replica = ""
        #: Label records this replica appended that joined no request: (source, why), to dead-letter.
        self.rejected: list[tuple[Source, Rejection]] = []

    # -- one label ---------------------------------------------------------------------------------------
    def on_label(
        self, message: Incoming, now_ms: int, *, may_defer: bool = False
    ) -> Rejection | _Defer | None:
        label = parse_label(message.value, self.settings.max_message_bytes)
        if isinstance(label, Rejection):
            self.metrics.label("invalid")
            return label
        source: Source = (
            getattr(message, "topic", ""),
            getattr(message, "partition", 0),
            getattr(message, "offset", 0),
            message.value,
            getattr(message, "key", None),
        )
        return self.join(label, now_ms, may_defer=may_defer, source=source)

    def join(
        self, label: Label, now_ms: int, *, may_defer: bool = False, source: Source | None = None
    ) -> Rejection | _Defer | None:
        """Join a parsed label with its request and learn it (or add its vote); with a training log, one
        whose request is unknown here goes to the log (``source``: where it was read), as every vote does."""
        if self._group_ballots is not None and source is not None:
            return self._append_label(label, source, now_ms)  # (tallied by every replica from the log)
        entry = self._voting_entry(label, now_ms)
        if entry is not None:
            return self._vote(entry, label, now_ms)
        pending = self.state.pending
        entry = pending.peek(now_ms, request_id=label.request_id, event_id=label.event_id)
        if entry is not None:
            rejection = self._take(entry, label.label, now_ms, source)
            if rejection is not None:
                self.metrics.label("invalid")
                return rejection  # the request stays open for a label the model can learn
            pending.join(now_ms, request_id=entry.request_id)
            return None
        result = pending.join(now_ms, request_id=label.request_id, event_id=label.event_id)
        if result.status is JoinStatus.UNKNOWN and may_defer:
            return DEFER  # its event may be further on in a partition being replayed
        if result.status is JoinStatus.UNKNOWN and self._shared and source is not None:
            return self._append_label(label, source, now_ms)
        self.metrics.label(result.status.value)
        if result.status is JoinStatus.EXPIRED and result.entry is not None:  # expired just now
            self.metrics.pending_expired("ttl")
        return Rejection(_JOIN_REJECTIONS[result.status], f"label for a {result.status.value} request")

    def _take(
        self, entry: PendingEntry, y: ClassLabel, now_ms: int, source: Source | None = None
    ) -> Rejection | None:
        """Learn a joined label, or append it to the training log when there is one (``source``: where the
        label was read)."""
        if not self.settings.training_topic:
            return self._learn(entry, y, now_ms)
        try:
            self.state.learner.check_label(y)
        except Exception as error:
            return _unlearnable(error)
        self.outbox.learned.append(entry.request_id)  # journaled: a replay does not append it again
        if entry.request_id in self.learned_before:
            self.learned_before.discard(entry.request_id)  # appended (and counted) before the restart
            return None
        label_key = source_key(source) if source else ""
        self.outbox.emit(training_record(entry, y, self.settings.training_topic, label_key))
        self._count(entry, y, now_ms)
        return None

    @property
    def _shared(self) -> bool:
        """Whether requests belong to the group (a training log)."""
        return self.state.group is not None

    @property
    def _group_ballots(self) -> LabelAggregator | None:
        """The group's votes (a training log and several annotators a request), else ``None``."""
        return self.state.group.ballots if self.state.group is not None else None

    def _append_label(self, label: Label, source: Source, now_ms: int) -> Rejection | None:
        """Append a label of a request this replica does not hold to the log, once (see the module)."""
        try:
            self.state.learner.check_label(label.label)
        except Exception as error:
            return _unlearnable(error)
        record = label_record(label, source, now_ms, self.replica, self.settings.training_topic)
        key = source_key(source)
        self.outbox.learned.append(key)  # journaled: a replay does not append it again
        if key in self.learned_before:
            self.learned_before.discard(key)
        else:
            self.outbox.emit(record)
        return None

    def apply(self, record: Example | Ask | Answer, now_ms: int) -> Rejection | None:
        """Take a record of the training log: learn an example, unless its request was learned already;
        open a request; join a label with the group's open requests."""
        applied = self.state.applied
        assert applied is not None  # (made with the training topic)
        if isinstance(record, Answer):
            return self._answer(record)
        entry = record.entry
        self._tick_log(entry.asked_at_ms)
        if isinstance(record, Ask):
            group = self.state.group
            if group is not None and not group.knows_event(entry.event_id):  # (else appended twice)
                group.add_entry(entry)  # (evictions: the oldest open requests, silently)
                stopping = self.state.stopping
                if not self.state.pending.knows_event(entry.event_id):  # (its own counted when made)
                    stopping.on_ask()  # the group's requests count against max_labels
                stopping.observe(entry.features)  # every replica: the same stabilising-predictions sample
                self.metrics.training_example("request")
            return None
        if applied.status_of_request(entry.request_id) is not None:
            self.metrics.training_example("duplicate")
            return None  # appended twice (a joiner replayed its label after a crash): learned once
        applied.add(entry.request_id, entry.event_id, APPLIED)
        if record.label_key:  # the same label read again by another replica (a rebalance) joins nothing
            applied.add(record.label_key, record.label_key, LABEL_READ)
        self._close(entry.request_id, now_ms)
        rejection = self._learn(entry, record.label, now_ms, counted=True)
        self.metrics.training_example("learned" if rejection is None else "invalid")
        return rejection

    def _answer(self, answer: Answer) -> None:
        """Join a label record with the group's open requests, as every replica does at this point."""
        applied, group = self.state.applied, self.state.group
        assert applied is not None and group is not None
        if applied.status_of_request(answer.key) is not None:
            self.metrics.training_example("duplicate")
            return None  # the same label appended twice (read again after a rebalance or a restart)
        applied.add(answer.key, answer.key, LABEL_READ)
        self._tick_log(answer.received_at_ms)
        mine = answer.by == self.replica
        entry = group.peek(answer.received_at_ms, request_id=answer.request_id, event_id=answer.event_id)
        if entry is None or applied.status_of_request(entry.request_id) is not None:
            found = group.join(answer.received_at_ms, request_id=answer.request_id, event_id=answer.event_id)
            status = JoinStatus.DUPLICATE if entry is not None else found.status
            self.metrics.training_example("unjoined")
            if mine:
                self.metrics.label(status.value)
                why = Rejection(_JOIN_REJECTIONS[status], f"label for a {status.value} request")
                self.rejected.append((answer.source, why))
            return None
        if group.ballots is not None:
            return self._tally(entry, answer, group.ballots, mine)
        applied.add(entry.request_id, entry.event_id, APPLIED)
        self._close(entry.request_id, answer.received_at_ms)
        rejection = self._learn(entry, answer.label, answer.received_at_ms, counted=True)
        self.metrics.training_example("learned" if rejection is None else "invalid")
        if mine and rejection is None:
            self._count(entry, answer.label, answer.received_at_ms)
        elif mine and rejection is not None:
            self.metrics.label("invalid")
            self.rejected.append((answer.source, rejection))
        return None

    def _tally(self, entry: PendingEntry, answer: Answer, ballots: LabelAggregator, mine: bool) -> None:
        """Add a vote read from the log to its request's ballot; learn the consensus once it is complete."""
        status = ballots.add(entry.request_id, answer.annotator, answer.label, answer.received_at_ms)
        self.metrics.training_example("unjoined" if status == "duplicate" else "vote")
        why = self._count_vote(status, answer.annotator) if mine else None  # (counted by its reader)
        if why is not None:
            self.rejected.append((answer.source, why))
        if status == "complete":
            self._group_consensus(entry, ballots, answer.received_at_ms)

    def _group_consensus(self, entry: PendingEntry, ballots: LabelAggregator, at_ms: int) -> None:
        """Learn the consensus of a request's votes read from the log (complete, timed out or expired)."""
        consensus = ballots.close(entry.request_id)
        applied = self.state.applied
        assert applied is not None
        if consensus is None or applied.status_of_request(entry.request_id) is not None:
            return
        applied.add(entry.request_id, entry.event_id, APPLIED)
        asker = self.state.pending.knows_event(entry.event_id)  # (reports the disagreement, once)
        self._close(entry.request_id, at_ms)
        if asker and not consensus.unanimous:
            self.metrics.disagreement()
        rejection = self._learn(entry, consensus.label, at_ms, counted=True)
        self.metrics.training_example("learned" if rejection is None else "invalid")
        if asker and rejection is None:
            self.metrics.learned(consensus.label, (at_ms - entry.asked_at_ms) / 1000)

    def _tick_log(self, at_ms: int) -> None:
        """The log's clock moves to ``at_ms``: the group's requests past their TTL then are dropped (with
        votes, their consensus learned), and ballots past their timeout are concluded."""
        state = self.state
        if at_ms <= state.log_clock_ms:
            return
        state.log_clock_ms = at_ms
        group = state.group
        if group is None:
            return
        expired = group.expire(at_ms)
        ballots = group.ballots
        if ballots is None:
            return
        for gone in expired:
            if ballots.votes(gone.entry.request_id):
                self._group_consensus(gone.entry, ballots, at_ms)
            ballots.discard(gone.entry.request_id)
        for request_id in ballots.due(at_ms):
            entry = group.peek(at_ms, request_id=request_id)
            if entry is not None:
                self._group_consensus(entry, ballots, at_ms)
            ballots.discard(request_id)

    def _close(self, request_id: str, now_ms: int) -> None:
        """A request of the log was answered: nobody waits for it any more (here or in the group)."""
        if self.state.group is not None:  # (on the log's clock: the same status on every replica)
            self.state.group.join(self.state.log_clock_ms, request_id=request_id)
        # The asker's own entry is open if another replica joined it; one this replica joined before a
        # restart stays open for its label's replay (``learned_before``).
        if self.state.ballots is None and request_id not in self.learned_before:
            self.state.pending.join(now_ms, request_id=request_id)

    def _count(self, entry: PendingEntry, y: ClassLabel, now_ms: int) -> None:
        if self.state.ballots is None:  # (with votes, each vote was counted as it came)
            self.metrics.label(JoinStatus.LEARNED.value)
        self.metrics.learned(y, (now_ms - entry.asked_at_ms) / 1000)

    def _learn(
        self, entry: PendingEntry, y: ClassLabel, now_ms: int, *, counted: bool = False
    ) -> Rejection | None:
        """Learn ``(entry, y)``; ``counted``: the joiner counted it already (a training-log example)."""
        state = self.state
        unbiased, ask_proba = entry.decision_reason == RANDOM, weighting_proba(entry.ask_proba)
        try:
            drifted = state.watch.learn(entry.features, y, unbiased=unbiased, ask_proba=ask_proba)
        except Exception as error:
            log.warning("model rejected a label", extra={"error": repr(error)})
            return _unlearnable(error)
        state.model_version += 1
        if not counted:
            self.outbox.learned.append(entry.request_id)
            if entry.request_id in self.learned_before:
                self.learned_before.discard(entry.request_id)  # counted before the restart
            else:
                self._count(entry, y, now_ms)
        # The accuracy estimates: the random sample, and every label whose ask probability is known.
        correct = entry.predicted_label == y
        if unbiased:
            self.metrics.judged(correct)
        if ask_proba is not None:
            self.metrics.judged_weighted(correct, ask_proba)
        state.stopping.on_label(correct, unbiased=unbiased, ask_proba=ask_proba)
        # Every stability_every labels the check predicts its held events (up to stability_size): on a
        # matrix where the model allows, not one river call each (those took a third of the loop's time
        # with every request answered at once).
        classifier = state.learner.classifier
        state.stopping.check_stability(state.model_version, lambda rows: predict_many(classifier, rows))
        if drifted:
            self._on_drift(now_ms)
        return None

    # -- several annotators ------------------------------------------------------------------------------
    def _voting_entry(self, label: Label, now_ms: int) -> PendingEntry | None:
        """The pending, unexpired entry a label votes on, when labels are aggregated."""
        if self.state.ballots is None:
            return None
        return self.state.pending.peek(now_ms, request_id=label.request_id, event_id=label.event_id)

    def _vote(self, entry: PendingEntry, label: Label, now_ms: int) -> Rejection | None:
        ballots = self.state.ballots
        assert ballots is not None
        status = ballots.add(entry.request_id, label.annotator, label.label, now_ms)
        why = self._count_vote(status, label.annotator)
        if why is not None:
            return why
        if status == "complete":
            result = self.state.pending.join(now_ms, request_id=entry.request_id)
            if result.entry is not None:
                return self._learn_consensus(result.entry, now_ms)
        return None

    def _count_vote(self, status: str, annotator: str | None) -> Rejection | None:
        """Count a vote added to a ballot (``status``); a second vote of one annotator is rejected."""
        if status == "duplicate":
            self.metrics.label(JoinStatus.DUPLICATE.value)
            return Rejection(RejectReason.DUPLICATE, "this annotator labeled this request already")
        name = annotator or ANONYMOUS
        self.metrics.annotator_label(name if name in self.top_annotators else OTHER)
        # Every vote accepted into a consensus counts as learned: the consensus is learned once for all.
        self.metrics.label(JoinStatus.LEARNED.value)
        return None

    def _learn_consensus(self, entry: PendingEntry, now_ms: int) -> Rejection | None:
        """Aggregate an entry's votes and learn the consensus (once: the ballot is closed here)."""
        ballots = self.state.ballots
        assert ballots is not None
        consensus = ballots.close(entry.request_id)
        if consensus is None:
            return None
        if not consensus.unanimous:
            self.metrics.disagreement()
            log.info(
                "annotators disagreed",
                extra={
                    "request_id": entry.request_id,
                    "event_id": entry.event_id,
                    "votes": {vote.annotator: repr(vote.label) for vote in consensus.ballot},
                    "consensus": repr(consensus.label),
                    "tie_rule": consensus.tie_rule,
                },
            )
        return self._take(entry, consensus.label, now_ms)

    # -- requests leaving the store ---------------------------------------------------------------------
    def conclude_expired(self, expired: list[Expired], now_ms: int) -> list[Expired]:
        """Learn the votes of requests that left the store (TTL, eviction); return those with none."""
        ballots = self.state.ballots
        if ballots is None:
            return expired
        unanswered = []
        for gone in expired:
            if ballots.votes(gone.entry.request_id):
                self._learn_consensus(gone.entry, now_ms)
            else:
                ballots.discard(gone.entry.request_id)
                unanswered.append(gone)
        return unanswered

    def on_evicted(self, evicted: list[Expired], now_ms: int) -> None:
        self.metrics.pending_expired("evicted", len(self.conclude_expired(evicted, now_ms)))

    def expire(self, now_ms: int) -> None:
        """Expire the requests past their TTL and learn what the ballots past their timeout have."""
        expired = self.conclude_expired(self.state.pending.expire(now_ms), now_ms)
        self.metrics.pending_expired("ttl", len(expired))
        ballots = self.state.ballots
        if ballots is None:
            return
        for request_id in ballots.due(now_ms):
            result = self.state.pending.join(now_ms, request_id=request_id)
            if result.entry is not None:
                self._learn_consensus(result.entry, now_ms)
            else:
                ballots.discard(request_id)
