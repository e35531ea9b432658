"""Several annotators per request: collect their votes, agree on one label, track who agrees.

A label request can go to ``r`` annotators. :class:`LabelAggregator` keeps one ballot per request:
votes come in with ``add``; a second vote by the same annotator is a duplicate and is ignored (labels
without an annotator name all count as the one annotator ``"anonymous"``). The ballot is closed — and
its consensus learned, once — when ``r`` votes are in, or by the caller when the request's TTL or the
aggregation timeout (``due``) passes, with whatever votes it has (at least one).

Consensus (:func:`consensus`): majority vote, each vote weighing ``1``; or, with ``weighted=True``,
each vote weighing its annotator's one-coin log-odds ``w = log(p / (1 − p))``, with ``p`` the
annotator's smoothed agreement with past consensus (below), clipped to ``[0.5, 0.99]`` — an annotator at
chance weighs nothing, a reliable one up to ``log 99 ≈ 4.6`` (when every voter weighs nothing, the votes
are counted unweighted). Ties (equal totals) go to the label backed by the annotator with the best
agreement history; if that ties too, to the label voted first.

Agreement history (:class:`AnnotatorHistory`): when a ballot with at least two votes closes, each vote
is compared with the *leave-one-out* consensus — the strict unweighted majority of the ballot's other
votes (no record when they tie). Leaving the vote itself out, and not weighting, keeps the history from
reinforcing itself: an annotator who won a few weighted votes early does not agree "more" because of
its own weight. ``p = (agreed + a) / (total + a + b)`` with a prior of
``a = 3``, ``b = 1`` (a newcomer counts as agreeing 75% of the time, so weights start positive). The
history is bounded (``max_tracked`` annotators; the one with the fewest votes is forgotten first) and
names the ``top_n`` annotators by volume for metric labels; everyone else is ``"other"``.

Pure: time comes in as ``now_ms``; no randomness.

Examples
--------
>>> aggregator = LabelAggregator(needed=3)
>>> aggregator.add("r1", "ann", "cat", now_ms=0)
'accepted'
>>> aggregator.add("r1", "ann", "dog", now_ms=1)
'duplicate'
>>> aggregator.add("r1", "bob", "dog", now_ms=2), aggregator.add("r1", "cy", "cat", now_ms=3)
('accepted', 'complete')
>>> result = aggregator.close("r1")
>>> result.label, result.votes, result.unanimous
('cat', 3, False)
>>> aggregator.history.counts("bob"), aggregator.history.counts("ann")  # (agreed, judged)
((0, 1), (0, 0))

Bob disagreed with the two others; Ann's and Cy's others were split (bob vs. the other), so their votes
were not judged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from activestream.types import ClassLabel

__all__ = [
    "ANONYMOUS",
    "OTHER",
    "AnnotatorHistory",
    "Consensus",
    "LabelAggregator",
    "Vote",
    "VoteStatus",
    "consensus",
]

#: The annotator name of labels that carry none.
ANONYMOUS: Final = "anonymous"
#: The metric label of annotators outside the top ``n`` by volume.
OTHER: Final = "other"
VoteStatus = Literal["accepted", "duplicate", "complete"]
_PRIOR_AGREE: Final = 3.0
_PRIOR_DISAGREE: Final = 1.0
_P_MIN, _P_MAX = 0.5, 0.99
_TIE: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Vote:
    """One annotator's label for one request."""

    annotator: str
    label: ClassLabel
    at_ms: int


@dataclass(frozen=True, slots=True)
class Consensus:
    """The label a ballot agreed on.

    ``support`` is the winning label's share of the (weighted) votes; ``tie_rule`` says how a tie was
    broken (``None``: no tie, ``"history"``: best agreement history, ``"earliest"``: first vote).
    """

    label: ClassLabel
    votes: int
    support: float
    unanimous: bool
    tie_rule: str | None = None
    ballot: tuple[Vote, ...] = field(default=(), repr=False)


class AnnotatorHistory:
    """Per-annotator agreement with the consensus, bounded (see the module docstring).

    >>> history = AnnotatorHistory(max_tracked=2)
    >>> history.record("ann", True); history.record("ann", True); history.record("bob", False)
    >>> history.counts("ann"), round(history.agreement("bob"), 2), round(history.agreement("new"), 2)
    ((2, 2), 0.6, 0.75)
    >>> history.record("cy", True)  # a third annotator: bob (fewest votes) is forgotten
    >>> history.counts("bob"), history.top(1), history.metric_label("cy", top_n=1)
    ((0, 0), ['ann'], 'other')
    """

    def __init__(self, max_tracked: int = 10_000) -> None:
        if max_tracked < 1:
            raise ValueError(f"max_tracked must be >= 1, got {max_tracked!r}")
        self.max_tracked = max_tracked
        self._agreed: dict[str, int] = {}
        self._total: dict[str, int] = {}
        self._labels: dict[str, int] = {}

    def record(self, annotator: str, agreed: bool) -> None:
        """One of ``annotator``'s votes did (not) agree with its ballot's consensus."""
        if annotator not in self._total:
            self._make_room()
        self._agreed[annotator] = self._agreed.get(annotator, 0) + int(agreed)
        self._total[annotator] = self._total.get(annotator, 0) + 1

    def counts(self, annotator: str) -> tuple[int, int]:
        """``(agreed, total)`` of an annotator (``(0, 0)`` when unknown or forgotten)."""
        return self._agreed.get(annotator, 0), self._total.get(annotator, 0)

    def agreement(self, annotator: str) -> float:
        """Smoothed agreement ratio ``(agreed + 3) / (total + 4)``."""
        agreed, total = self.counts(annotator)
        return (agreed + _PRIOR_AGREE) / (total + _PRIOR_AGREE + _PRIOR_DISAGREE)

    def raw_agreement(self, annotator: str) -> float:
        """``agreed / total`` (NaN before the first judged vote): what the metrics show."""
        agreed, total = self.counts(annotator)
        return agreed / total if total else math.nan

    def weight(self, annotator: str) -> float:
        """One-coin log-odds weight ``log(p / (1 − p))``, ``p`` clipped to ``[0.5, 0.99]``."""
        p = min(max(self.agreement(annotator), _P_MIN), _P_MAX)
        return math.log(p / (1.0 - p))

    def top(self, n: int) -> list[str]:
        """The ``n`` annotators with the most judged votes (ties: by name)."""
        return sorted(self._total, key=lambda a: (-self._total[a], a))[:n]

    def metric_label(self, annotator: str, top_n: int) -> str:
        """``annotator`` if it is among the ``top_n`` by volume, else ``"other"``."""
        return annotator if annotator in self.top(top_n) else OTHER

    def others_agreement(self, top_n: int) -> float:
        """Raw agreement of everyone outside the top ``top_n`` together (NaN when none)."""
        top = set(self.top(top_n))
        agreed = sum(v for a, v in self._agreed.items() if a not in top)
        total = sum(v for a, v in self._total.items() if a not in top)
        return agreed / total if total else math.nan

    def __len__(self) -> int:
        return len(self._total)

    def _make_room(self) -> None:
        while len(self._total) >= self.max_tracked:
            # dicts keep insertion order: min() returns the earliest among the fewest.
            fewest = min(self._total, key=self._total.__getitem__)
            del self._total[fewest], self._agreed[fewest]


def consensus(votes: Sequence[Vote], history: AnnotatorHistory, *, weighted: bool = False) -> Consensus:
    """Aggregate a ballot's votes (see the module docstring for the weights and the tie rule).

    >>> votes = [Vote("a", 1, 0), Vote("b", 0, 1)]
    >>> consensus(votes, AnnotatorHistory()).tie_rule, consensus(votes, AnnotatorHistory()).label
    ('earliest', 1)
    >>> history = AnnotatorHistory()
    >>> for _ in range(5):
    ...     history.record("b", True)
    >>> consensus(votes, history).label, consensus(votes, history).tie_rule
    (0, 'history')
    """
    if not votes:
        raise ValueError("a consensus needs at least one vote")
    weights = [history.weight(v.annotator) if weighted else 1.0 for v in votes]
    if not any(w > 0.0 for w in weights):
        weights = [1.0] * len(votes)
    totals: dict[ClassLabel, float] = {}
    first: dict[ClassLabel, int] = {}
    best_history: dict[ClassLabel, float] = {}
    for i, (vote, w) in enumerate(zip(votes, weights, strict=True)):
        # Labels are compared as (type, value): on the wire 1 and true are different answers.
        key = (type(vote.label).__name__, vote.label)
        totals[key] = totals.get(key, 0.0) + w
        first.setdefault(key, i)
        best_history[key] = max(best_history.get(key, 0.0), history.agreement(vote.annotator))
    top = max(totals.values())
    tied = [k for k in totals if totals[k] >= top - _TIE]
    rule = None
    if len(tied) > 1:
        best = max(best_history[k] for k in tied)
        by_history = [k for k in tied if best_history[k] >= best - _TIE]
        rule = "history" if len(by_history) == 1 else "earliest"
        tied = by_history
    winner = min(tied, key=first.__getitem__)
    return Consensus(
        label=votes[first[winner]].label,
        votes=len(votes),
        support=totals[winner] / sum(totals.values()),
        unanimous=len(totals) == 1,
        tie_rule=rule,
        ballot=tuple(votes),
    )


@dataclass(slots=True)
class _Ballot:
    opened_ms: int
    votes: list[Vote]


class LabelAggregator:
    """Ballots of the requests waiting for several labels, and the annotators' agreement history.

    Parameters
    ----------
    needed
        ``r``: votes that complete a ballot.
    timeout_ms
        After its first vote, a ballot is ``due`` this long later even if incomplete (``None``: never;
        the request's TTL still applies).
    weighted
        Weight votes by agreement history (one-coin log-odds) instead of one each.
    max_tracked
        Most annotators in the agreement history.
    """

    def __init__(
        self,
        needed: int = 1,
        timeout_ms: int | None = None,
        *,
        weighted: bool = False,
        max_tracked: int = 10_000,
    ) -> None:
        if needed < 1:
            raise ValueError(f"needed must be >= 1, got {needed!r}")
        if timeout_ms is not None and timeout_ms < 1:
            raise ValueError(f"timeout_ms must be >= 1 or None, got {timeout_ms!r}")
        self.needed = needed
        self.timeout_ms = timeout_ms
        self.weighted = weighted
        self.history = AnnotatorHistory(max_tracked)
        # Insertion order is opening order, so the first due ballots come first.
        self._ballots: dict[str, _Ballot] = {}

    def __len__(self) -> int:
        """Open ballots."""
        return len(self._ballots)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._ballots

    def add(self, request_id: str, annotator: str | None, label: ClassLabel, now_ms: int) -> VoteStatus:
        """Add a vote: ``duplicate`` (ignored), ``accepted``, or ``complete`` (``needed`` votes are in)."""
        name = annotator or ANONYMOUS
        ballot = self._ballots.get(request_id)
        if ballot is None:
            ballot = self._ballots[request_id] = _Ballot(now_ms, [])
        elif any(v.annotator == name for v in ballot.votes):
            return "duplicate"
        ballot.votes.append(Vote(name, label, now_ms))
        return "complete" if len(ballot.votes) >= self.needed else "accepted"

    def votes(self, request_id: str) -> tuple[Vote, ...]:
        ballot = self._ballots.get(request_id)
        return tuple(ballot.votes) if ballot else ()

    def due(self, now_ms: int) -> list[str]:
        """Request ids whose ballot's aggregation timeout has passed at ``now_ms``, oldest first."""
        if self.timeout_ms is None:
            return []
        due = []
        for request_id, ballot in self._ballots.items():
            if now_ms - ballot.opened_ms < self.timeout_ms:
                break
            due.append(request_id)
        return due

    def close(self, request_id: str) -> Consensus | None:
        """Aggregate and forget a ballot (``None`` when it has no vote); updates the agreement history."""
        ballot = self._ballots.pop(request_id, None)
        if ballot is None or not ballot.votes:
            return None
        result = consensus(ballot.votes, self.history, weighted=self.weighted)
        for i, vote in enumerate(ballot.votes):
            others = _majority([v.label for j, v in enumerate(ballot.votes) if j != i])
            if others is not None:
                self.history.record(vote.annotator, _same(vote.label, others[1]))
        return result

    def discard(self, request_id: str) -> None:
        """Forget a ballot without aggregating it."""
        self._ballots.pop(request_id, None)


def _same(a: ClassLabel, b: ClassLabel) -> bool:
    return type(a) is type(b) and a == b


def _majority(labels: list[ClassLabel]) -> tuple[str, ClassLabel] | None:
    """The strict unweighted majority of ``labels`` (``None`` for no label or a tie)."""
    counts: dict[tuple[str, ClassLabel], int] = {}
    for label in labels:
        key = (type(label).__name__, label)
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None
    ranked = sorted(counts.values(), reverse=True)
    if len(ranked) > 1 and ranked[0] == ranked[1]:
        return None
    return max(counts, key=counts.__getitem__)
