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

__all__ = ["APPLIED", "EngineState", "applied_memory", "ballots_for"]

#: The one status the memory of applied examples records.
APPLIED = "applied"


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


def applied_memory(settings: Settings) -> ClosedRequests | None:
    """A fresh memory of the training-log examples learned (``None`` without a training log)."""
    return ClosedRequests(settings.pending_max, (APPLIED,)) if settings.training_topic else None
