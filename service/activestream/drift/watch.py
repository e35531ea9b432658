"""The drift watch: what happens around the learner when a drift is detected or signalled.

It ties the pieces of :mod:`activestream.drift` to one :class:`~activestream.learner.ActiveLearner`:

- every event's informativeness score feeds the label-free signal (:mod:`.label_free`);
- every learned label goes to the learner with ``unbiased`` set when it was asked at random and with
  ``ask_proba``, the probability with which it was asked (``Decision.ask_proba``, ``None`` from a
  deterministic policy), so the arms' accuracy estimates use the random sample or, without one,
  inverse-probability weighting (:mod:`.estimates`);
- a drift the active arm reacted to — and, when configured, a label-free alarm — triggers the budget
  boost when the learner's policy is a :class:`~.boost.BudgetBoost`.

It is pure: the service calls it and turns what it returns into metrics, resumes and logs.

>>> import itertools
>>> from river import datasets
>>> from activestream.drift import DriftAdaptiveClassifier
>>> from activestream.learner import ActiveLearner
>>> learner = ActiveLearner(DriftAdaptiveClassifier("gnb", seed=1), policy="split", budget=1.0, seed=1)
>>> watch = DriftWatch(learner, LabelFreeDriftSignal())
>>> stream = itertools.chain(datasets.synth.SEA(variant=0, seed=1).take(3000),
...                          datasets.synth.SEA(variant=3, seed=2).take(3000))
>>> drifts = []
>>> for i, (x, y) in enumerate(stream):
...     decision = learner.decide(x)
...     _ = watch.observe_score(decision.score)
...     if watch.learn(x, y, unbiased=decision.reason == "random", ask_proba=decision.ask_proba):
...         drifts.append(i)
>>> len(drifts), drifts[0] > 3000
(1, True)
>>> watch.status().drifts
1
"""

from __future__ import annotations

from activestream.drift.adaptive import DriftAdaptiveClassifier, DriftStatus
from activestream.drift.boost import BudgetBoost
from activestream.drift.label_free import LabelFreeDriftSignal
from activestream.learner import ActiveLearner
from activestream.types import ClassLabel, Features

__all__ = ["DriftWatch", "LabelFreeDriftSignal"]


class DriftWatch:
    """Drift detection and reactions around one learner.

    Parameters
    ----------
    learner
        The learner; its classifier is a :class:`DriftAdaptiveClassifier` when adaptation arms are on.
    label_free
        The label-free signal on all scores, or ``None`` for none.
    boost_on_label_free
        Whether a label-free alarm triggers the budget boost as a drift does.
    """

    def __init__(
        self,
        learner: ActiveLearner,
        label_free: LabelFreeDriftSignal | None = None,
        boost_on_label_free: bool = False,
    ):
        self.learner = learner
        self.label_free = label_free
        self.boost_on_label_free = boost_on_label_free

    @property
    def adaptive(self) -> DriftAdaptiveClassifier | None:
        """The learner's adaptation arms, or ``None`` when it learns through one plain model."""
        classifier = self.learner.classifier
        return classifier if isinstance(classifier, DriftAdaptiveClassifier) else None

    @property
    def boost(self) -> BudgetBoost | None:
        policy = self.learner.threshold_policy
        return policy if isinstance(policy, BudgetBoost) else None

    @property
    def steers_policy(self) -> bool:
        """Whether a score observed may change the policy's next decision (a label-free alarm boosts the
        budget): the scores must then be observed between decisions, not after a run of them."""
        return self.label_free is not None and self.boost_on_label_free and self.boost is not None

    def observe_score(self, score: float) -> bool:
        """Feed one event's score to the label-free signal; ``True`` on an alarm."""
        if self.label_free is None or not self.label_free.update(score):
            return False
        if self.boost_on_label_free and self.boost is not None:
            self.boost.trigger()
        return True

    def learn(self, x: Features, y: ClassLabel, *, unbiased: bool, ask_proba: float | None = None) -> bool:
        """Learn one label; ``True`` when the active arm reacted to a drift because of it.

        ``unbiased``: the label was asked at random (``Decision.reason == "random"``); ``ask_proba``: the
        probability with which it was asked, when the policy knows it (inverse-probability weighting).
        Both only matter to adaptation arms; a plain model just learns.
        """
        arms = self.adaptive
        if arms is None:
            self.learner.learn_one(x, y)
            return False
        self.learner.learn_one(x, y, unbiased=unbiased, ask_proba=ask_proba)
        if not arms.drift_detected:
            return False
        if self.boost is not None:
            self.boost.trigger()
        return True

    def status(self) -> DriftStatus | None:
        """The arms' state for metrics, or ``None`` without adaptation arms."""
        arms = self.adaptive
        return None if arms is None else arms.status()
