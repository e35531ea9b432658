"""The state the engine decides and learns with: everything a checkpoint saves."""

from __future__ import annotations

from dataclasses import dataclass, field

from activestream.aggregate import LabelAggregator
from activestream.closed_requests import ClosedRequests
from activestream.config import Settings
from activestream.drift.watch import DriftWatch
from activestream.feature_bounds import CategoryBounds
from activestream.join import PendingStore
from activestream.learner import ActiveLearner
from activestream.stopping import StoppingMonitor

__all__ = [
    "APPLIED",
    "LABEL_READ",
    "EngineState",
    "applied_memory",
    "ballots_for",
    "group_requests",
    "pending_store",
    "place_ballots",
]

#: The statuses the memory of the training log records: an example learned, a label message read.
APPLIED = "applied"
LABEL_READ = "label_read"


@dataclass(slots=True)
class EngineState:
    """The learner, its drift watch, the pending requests (and their votes), the stopping criteria and
    the model version. The deciding and learning parts of the engine share one instance; a restore
    replaces its fields."""

    learner: ActiveLearner
    watch: DriftWatch
    pending: PendingStore
    stopping: StoppingMonitor
    model_version: int = 0
    #: The distinct string values each feature took (bounded by ``max_categories``).
    categories: CategoryBounds = field(default_factory=lambda: CategoryBounds(0))
    #: Votes of requests sent to several annotators (kept in the pending store, hence checkpointed).
    ballots: LabelAggregator | None = None
    #: With a training log: the request ids of the examples learned from it (newest ``pending_max``), so
    #: that an example appended twice (a joiner's replay after a crash) is learned once.
    applied: ClosedRequests | None = None
    #: With a training log: the offset of its next record to learn.
    training_offset: int = 0
    #: With a training log: the requests of every replica read from it and not answered yet, expiring on
    #: the log's own clock (``log_clock_ms``, its newest record's time), so identically on every replica.
    group: PendingStore | None = None
    log_clock_ms: int = 0


def ballots_for(pending: PendingStore, settings: Settings) -> LabelAggregator | None:
    """The pending store's ballots, configured from ``settings`` (``None`` with one annotator a request).

    The ballots live in the pending store so that a checkpoint saves them with their requests.
    """
    if settings.annotators_per_request == 1:
        pending.ballots = None
        return None
    ballots = pending.ballots
    if not isinstance(ballots, LabelAggregator):
        timeout = settings.aggregation_timeout_seconds
        ballots = LabelAggregator(weighted=settings.aggregation_weighted)
        ballots.timeout_ms = round(timeout * 1000) if timeout > 0 else None
    ballots.needed = settings.annotators_per_request
    ballots.weighted = settings.aggregation_weighted
    pending.ballots = ballots
    return ballots


def place_ballots(state: EngineState, settings: Settings) -> None:
    """Where votes are tallied (several annotators a request): with a training log in the group's store,
    since every vote goes through the log and every replica tallies it alike (any replica may read any
    vote); else in the replica's own pending store (``state.ballots``)."""
    if state.group is None:
        state.ballots = ballots_for(state.pending, settings)
        return
    state.pending.ballots = state.ballots = None
    ballots_for(state.group, settings)


def applied_memory(settings: Settings) -> ClosedRequests | None:
    """A fresh memory of the training-log examples learned (``None`` without a training log)."""
    return ClosedRequests(settings.pending_max, (APPLIED, LABEL_READ)) if settings.training_topic else None


def pending_store(settings: Settings) -> PendingStore:
    """A fresh, empty store of requests, sized and timed by ``settings``."""
    return PendingStore(settings.pending_max, settings.label_ttl_seconds * 1000)


def group_requests(settings: Settings) -> PendingStore | None:
    """A fresh store of the group's open requests (``None`` without a training log)."""
    return pending_store(settings) if settings.training_topic else None
