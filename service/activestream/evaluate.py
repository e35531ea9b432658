"""Prequential evaluation for stream active learning.

The standard protocol (Žliobaitė et al. 2014): every event is first used to *test* the model, then the
learner decides whether to ask for its label; only asked labels are learned, and they may arrive ``delay``
events later. Accuracy is measured over every event, and the labels used are counted against the budget.

>>> from river import datasets
>>> from activestream.learner import make_learner
>>> stream = datasets.synth.SEA(seed=1).take(3000)
>>> result = prequential(make_learner("gnb", budget=0.1, seed=1), stream, delay=100)
>>> result.n_events, round(result.labels_fraction, 2)
(3000, 0.1)
>>> result.accuracy > 0.8
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from river import base, metrics
from river.active.base import ActiveLearningClassifier

from activestream.decide import make_policy
from activestream.decide.policies import RANDOM
from activestream.drift.estimates import weighting_proba
from activestream.drift.watch import DriftWatch
from activestream.learner import ActiveLearner
from activestream.types import ClassLabel, Features

__all__ = ["CurvePoint", "PrequentialResult", "prequential", "random_sampling"]


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """The state of a run after ``n_events`` events."""

    n_events: int
    labels_used: int
    accuracy: float
    window_accuracy: float


@dataclass(frozen=True, slots=True)
class PrequentialResult:
    """Quality and label cost of one prequential run."""

    n_events: int
    labels_used: int
    accuracy: float
    kappa: float
    curve: list[CurvePoint] = field(repr=False)

    @property
    def labels_fraction(self) -> float:
        return self.labels_used / self.n_events if self.n_events else 0.0


def random_sampling(classifier: base.Classifier, budget: float, seed: int | None = None) -> ActiveLearner:
    """The baseline every strategy must beat: ask for each event's label with probability ``budget``.

    It is the Split policy with its random part covering every event.

    >>> from activestream.models import make_model
    >>> random_sampling(make_model("gnb"), 0.05, seed=1).strategy
    'random/split'
    """
    return ActiveLearner(
        classifier,
        measure="random",
        policy=make_policy("split", budget, seed=seed, v=1.0),
        budget=budget,
        seed=seed,
    )


def prequential(
    learner: ActiveLearningClassifier,
    stream: Iterable[tuple[Features, ClassLabel]],
    delay: int = 0,
    curve_every: int = 500,
    window: int = 1000,
) -> PrequentialResult:
    """Test on every event, learn only asked labels, ``delay`` events after they were asked.

    Parameters
    ----------
    learner
        Any river active learner following the ``ActiveLearningClassifier`` contract.
    stream
        ``(x, y)`` pairs in stream order; ``y`` is only revealed to the learner when asked.
    delay
        Number of events between a label request and the label's arrival.
    curve_every
        Record a ``CurvePoint`` every this many events (and at the end).
    window
        Size of the sliding window for ``CurvePoint.window_accuracy``.
    """
    accuracy, kappa = metrics.Accuracy(), metrics.CohenKappa()
    recent: deque[bool] = deque(maxlen=window)
    # Each label in flight: when it is due, the event, and how it was asked (at random; its probability).
    in_flight: deque[tuple[int, Features, ClassLabel, bool, float | None]] = deque()
    curve: list[CurvePoint] = []
    # Our learners learn through a drift watch, as in the service: labels asked at random reach
    # drift-adaptive classifiers flagged as the unbiased sample, and every label carries the probability
    # with which it was asked (inverse-probability weighting). Other river active learners just learn.
    watch = DriftWatch(learner) if isinstance(learner, ActiveLearner) else None
    n = labels = 0
    ask_proba: float | None = None
    for n, (x, y) in enumerate(stream, start=1):
        if watch is not None:
            decision = learner.decide(x)
            y_pred, ask, unbiased = decision.y_pred, decision.ask, decision.reason == RANDOM
            ask_proba = weighting_proba(decision.ask_proba)
        else:
            (y_pred, ask), unbiased = learner.predict_one(x), False
        accuracy.update(y, y_pred)
        kappa.update(y, y_pred)
        recent.append(y_pred == y)
        if ask:
            labels += 1
            in_flight.append((n + delay, x, y, unbiased, ask_proba))
        while in_flight and in_flight[0][0] <= n:
            _, x_due, y_due, unbiased_due, proba_due = in_flight.popleft()
            if watch is not None:
                watch.learn(x_due, y_due, unbiased=unbiased_due, ask_proba=proba_due)
            else:
                learner.learn_one(x_due, y_due)
        if n % curve_every == 0:
            curve.append(_point(n, labels, accuracy, recent))
    if n and (not curve or curve[-1].n_events != n):
        curve.append(_point(n, labels, accuracy, recent))
    return PrequentialResult(n, labels, accuracy.get(), kappa.get(), curve)


def _point(n: int, labels: int, accuracy: metrics.Accuracy, recent: deque[bool]) -> CurvePoint:
    return CurvePoint(n, labels, accuracy.get(), sum(recent) / len(recent))
