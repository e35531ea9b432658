"""The active learner: a river classifier, an informativeness measure and a budgeted policy.

It follows river's ``active.base.ActiveLearningClassifier`` contract exactly — ``predict_one(x)`` returns
``(y_pred, ask)`` and ``learn_one(x, y)`` learns one labeled example — so it drops into river code such as
``evaluate.progressive_val_score``. ``decide(x)`` returns the whole ``Decision`` (score, threshold,
strategy, reason) for the audit trail and the label request.

>>> from river import datasets
>>> learner = ActiveLearner(make_model("logreg"), budget=0.1, seed=42)
>>> asked = 0
>>> for x, y in datasets.synth.SEA(seed=1).take(2000):
...     y_pred, ask = learner.predict_one(x)
...     if ask:
...         asked += 1
...         learner.learn_one(x, y)
>>> round(asked / 2000, 2)
0.1
>>> decision = learner.decide({"0": 7.0, "1": 2.0, "2": 5.0})
>>> decision.strategy
'margin/confidence_split'
>>> 0.0 <= decision.score <= 1.0
True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from river import base
from river.active.base import ActiveLearningClassifier

from activestream.decide import Policy, make_policy
from activestream.models import binary_only, check_binary_label, make_model
from activestream.score import Measure, make_measure
from activestream.types import ClassLabel, Features, Proba

__all__ = ["DEFAULT_MEASURE", "DEFAULT_POLICY", "ActiveLearner", "Decision", "make_learner"]

#: The defaults, chosen from the field benchmark over 5 seeds (docs/strategies.md): margin with
#: ConfidenceSplit — variable uncertainty on the confidence as MOA implements it, asking from the first
#: event — gains the most over random sampling among our configurations, and its random share gives
#: every event a known ask probability, so the accuracy estimates, the drift arms and the stopping
#: criteria have an unbiased sample.
DEFAULT_MEASURE = "margin"
DEFAULT_POLICY = "confidence_split"


# Not frozen, as ``Verdict``: one is made per event, and a frozen __init__ costs 4-5x (treat as immutable).
@dataclass(slots=True)
class Decision:
    """Everything known about one event's ask/discard decision."""

    y_pred: ClassLabel | None
    proba: dict[ClassLabel, float]
    score: float
    threshold: float
    ask: bool
    strategy: str
    reason: str
    #: The probability with which this event was asked (``Verdict.ask_proba``); ``None`` when the
    #: policy is deterministic. Labels carry it to the accuracy estimates (inverse probability weighting).
    ask_proba: float | None = None
    #: False while the model has learned no label: its ``y_pred`` is then a tie-break, not a prediction
    #: (a label request says ``null``; evaluation and the audit trail keep the model's argmax, as every
    #: baseline's).
    trained: bool = True


def _argmax(proba: Proba) -> ClassLabel | None:
    """The first class of the highest probability, as river's ``predict_one`` (``max``'s tie-break).

    >>> _argmax({False: 0.5, True: 0.5}), _argmax({"a": 0.2, "b": 0.7, "c": 0.1}), _argmax({})
    (False, 'b', None)
    """
    if len(proba) == 2:  # binary, the common case: twice as fast as ``max`` with a key
        (first, p_first), (second, p_second) = proba.items()
        return second if p_second > p_first else first
    return max(proba, key=proba.__getitem__) if proba else None


#: ``ActiveLearner._binary_labels`` of a learner pickled before it existed (an older checkpoint): its
#: predictions stay as the model gives them.
_UNKNOWN: Any = object()


class ActiveLearner(ActiveLearningClassifier):
    """A budgeted stream active learner.

    Parameters
    ----------
    classifier
        Any river classifier; it learns only the labels that were asked for.
    measure
        An informativeness ``Measure`` or its registry name (see ``activestream.score``).
    policy
        A threshold ``Policy`` or its registry name (see ``activestream.decide``).
    budget
        Target fraction of events to ask for, used when ``policy`` is a name.
    seed
        Seeds the measure and the policy when they are given by name.
    """

    def __init__(
        self,
        classifier: base.Classifier,
        measure: Measure | str = DEFAULT_MEASURE,
        policy: Policy | str = DEFAULT_POLICY,
        budget: float = 0.1,
        seed: int | None = None,
    ):
        super().__init__(classifier, seed=seed)
        self.measure = measure
        self.policy = policy
        self.budget = budget
        self._measure = make_measure(measure, seed=seed) if isinstance(measure, str) else measure
        self._policy = make_policy(policy, budget, seed=seed) if isinstance(policy, str) else policy
        # A binary model: the type of the labels it learned (int for 0/1, bool for true/false), None
        # before the first. river's binary models answer True/False whatever they were taught.
        self._binary_labels: type | None = None

    @property
    def informativeness(self) -> Measure:
        """The measure in use (``measure`` may be its name)."""
        return self._measure

    @property
    def threshold_policy(self) -> Policy:
        """The policy in use (``policy`` may be its name)."""
        return self._policy

    @property
    def strategy(self) -> str:
        """``"<measure>/<policy>"``: a bounded label for metrics and label requests."""
        return f"{self._measure.name}/{self._policy.name}"

    @property
    def spending(self) -> float:
        """The policy's windowed estimate of the fraction of events asked."""
        return self._policy.spending

    def decide(self, x: Features) -> Decision:
        """Score ``x``, decide whether to ask for its label, and say why."""
        proba = dict(self.classifier.predict_proba_one(x))
        score = self._measure.score(x, proba, self.classifier)
        verdict = self._policy.decide(score)
        y_pred, proba = self.present(proba)
        return Decision(
            y_pred=y_pred,
            proba=proba,
            score=score,
            threshold=verdict.threshold,
            ask=verdict.ask,
            strategy=self.strategy,
            reason=verdict.reason,
            ask_proba=verdict.ask_proba,
            trained=self.trained,
        )

    @property
    def trained(self) -> bool:
        """False while a binary model has learned no label (its 0.5/0.5 answer is no prediction).

        Other models predict nothing (``{}``) until they learn; a learner from an older checkpoint counts
        as trained.
        """
        return getattr(self, "_binary_labels", _UNKNOWN) is not None

    def present(self, proba: Proba) -> tuple[ClassLabel | None, dict[ClassLabel, float]]:
        """The prediction and the probabilities as the annotators label: a binary model taught 0/1 answers
        0/1, not river's True/False (which equal them: evaluation is unchanged).

        Called after scoring, on the per-event and the batch paths alike (the measure sees the model's own
        probabilities, so its scores do not depend on the label type).

        >>> learner = make_learner("logreg", seed=1)
        >>> learner.present({False: 0.4, True: 0.6}), learner.trained
        ((True, {False: 0.4, True: 0.6}), False)
        >>> learner.learn_one({"a": 1.0}, 1)
        >>> learner.present({False: 0.3, True: 0.7}), learner.trained
        ((1, {0: 0.3, 1: 0.7}), True)
        """
        if getattr(self, "_binary_labels", None) is int and self._binary_only:
            proba = {int(label): p for label, p in proba.items()}
        return _argmax(proba), proba

    def _ask_for_label(self, x: Any, y_pred: Any) -> bool:  # pragma: no cover - decide() is used instead
        return self._policy.decide(self._measure.score(x, y_pred, self.classifier)).ask

    def predict_proba_one(self, x: Features, **kwargs: Any) -> tuple[dict[ClassLabel, float], bool]:
        decision = self.decide(x)
        return decision.proba, decision.ask

    def predict_one(self, x: Features, **kwargs: Any) -> tuple[ClassLabel | None, bool]:
        decision = self.decide(x)
        return decision.y_pred, decision.ask

    @functools.cached_property
    def _binary_only(self) -> bool:
        # Judged once: the classifier (and the template the drift arms rebuild from) never changes type.
        return binary_only(self.classifier)

    def check_label(self, y: ClassLabel) -> None:
        """Raise what ``learn_one`` would raise for a label this model can never learn (a binary model's
        third class), without learning anything.

        >>> make_learner("logreg").check_label("down")
        Traceback (most recent call last):
        ...
        activestream.models.BinaryLabelError: the model is binary ... got 'down'; ...
        """
        if self._binary_only:
            check_binary_label(y)

    def learn_one(self, x: Features, y: ClassLabel, **kwargs: Any) -> None:
        """Learn one labeled example; ``kwargs`` (e.g. ``unbiased=True``) go to the classifier.

        A binary model refuses a third class rather than learning it as ``True``:

        >>> learner = make_learner("logreg", seed=1)
        >>> learner.learn_one({"a": 1.0}, "down")
        Traceback (most recent call last):
        ...
        activestream.models.BinaryLabelError: the model is binary ... got 'down'; ...
        """
        if self._binary_only:
            check_binary_label(y)
            self._binary_labels = bool if isinstance(y, bool) else int
        self.classifier.learn_one(x, y, **kwargs)
        self._measure.learn_one(x, y)


def make_learner(
    model: str | base.Classifier = "logreg",
    measure: str = DEFAULT_MEASURE,
    policy: str = DEFAULT_POLICY,
    budget: float = 0.1,
    seed: int | None = None,
    **measure_params: Any,
) -> ActiveLearner:
    """An ``ActiveLearner`` from names, as the configuration gives them.

    >>> make_learner("gnb", measure="margin", policy="split", budget=0.05, seed=1).strategy
    'margin/split'
    """
    classifier = make_model(model, seed) if isinstance(model, str) else model
    return ActiveLearner(
        classifier,
        measure=make_measure(measure, seed=seed, **measure_params),
        policy=make_policy(policy, budget, seed=seed),
        budget=budget,
        seed=seed,
    )
