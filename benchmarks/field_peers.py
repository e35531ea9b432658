"""The peers of ``field.py`` behind one interface, and the prequential loop for learners that decide late.

Two shapes of stream active learner are compared:

- river's contract, ``predict_one(x) -> (y_pred, ask)`` then ``learn_one(x, y)`` for the asked events —
  activestream, random sampling, river's ``EntropySampler``, scikit-activeml's strategies (through
  ``label_efficiency.SkactivemlStreamLearner``) and the fully supervised ceiling. They run in
  ``activestream.evaluate.prequential``;
- MOA's ``ALUncertainty``, which decides whether to use a label inside ``trainOnInstance``, with the label
  in hand: ``predict_one(x) -> y_pred`` then ``offer_one(x, y) -> used``. ``prequential_offer`` runs it
  with the same test-then-train protocol, accuracy, kappa and curve as ``prequential``; with a label
  delay the offer (hence MOA's decision) happens when the label would arrive, ``delay`` events later.
  That decision is made by a model that has already learned every label used before the event: MOA then
  faces no verification latency, which nobody asking annotators can do. ``MoaVarUncertaintyAtAsk`` ports
  ``VarUncertainty``'s rule onto the same MOA learner under river's contract, deciding when the event
  arrives; at delay 0 it makes ``ALUncertainty``'s decisions exactly.

Capymoa and scikit-activeml are imported lazily: only the workers that run their peers start a JVM.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from river import metrics

from activestream.evaluate import CurvePoint, PrequentialResult

#: MOA's ALUncertainty strategies compared (``-d``; FixedUncertainty has no budget control of its own),
#: and MOA's random sampling (``ALRandom``, fixed budget manager): the baseline on MOA's own learners.
MOA_STRATEGIES = ("VarUncertainty", "RandVarUncertainty", "SelSampling", "ALRandom")
#: MOA's nearest base learner to each of ours; MOA has no logistic regression, so ``logreg`` has none.
MOA_BASE = {
    "gnb": "bayes.NaiveBayes",
    # Same grace period as activestream.models' river HAT (MOA's default is 200).
    "hat": "(trees.HoeffdingAdaptiveTree -g 50)",
}


class Supervised:
    """The fully supervised ceiling: asks for every label.

    >>> from river import naive_bayes
    >>> s = Supervised(naive_bayes.GaussianNB())
    >>> s.learn_one({"a": 1.0}, True)
    >>> s.predict_one({"a": 1.0})
    (True, True)
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict_one(self, x: dict[str, Any]) -> tuple[Any, bool]:
        return self.model.predict_one(x), True

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        self.model.learn_one(x, y)


class RiverActive:
    """A river active learner with activestream's cold start: it asks while its model gives fewer than
    two classes a positive probability.

    Without it river 0.26's ``EntropySampler`` never starts learning on a cold HAT or GNB: their first
    answer is an empty distribution (``predict_one`` then returns the empty dict as the prediction), the
    next a single class, and the entropy of both is 0 — never asked; with one class whose probability
    rounds off 1, ``_p`` divides by log2(1) = 0 (``ZeroDivisionError``).

    >>> from river import active, naive_bayes
    >>> sampler = RiverActive(active.EntropySampler(naive_bayes.GaussianNB(), seed=1))
    >>> sampler.predict_one({"a": 1.0})
    (None, True)
    >>> sampler.learn_one({"a": 1.0}, "x")
    >>> sampler.predict_one({"a": 1.0})
    ('x', True)
    >>> class OneClassUnnormalised:
    ...     def predict_proba_one(self, x): return {"x": 0.5}
    >>> RiverActive(active.EntropySampler(OneClassUnnormalised(), seed=1)).predict_one({})
    ('x', True)
    """

    def __init__(self, learner: Any) -> None:
        self.learner = learner

    def predict_one(self, x: dict[str, Any]) -> tuple[Any, bool]:
        try:
            proba, ask = self.learner.predict_proba_one(x)
        except ZeroDivisionError:
            proba, ask = self.learner.classifier.predict_proba_one(x), True
        if sum(1 for p in proba.values() if p > 0) < 2:
            ask = True
        return (max(proba, key=proba.__getitem__) if proba else None), ask

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        self.learner.learn_one(x, y)


class MoaUncertainty:
    """MOA's ``ALUncertainty`` (Žliobaitė et al. 2014, MOA's own implementation), or ``ALRandom``, through
    capymoa.

    The Java learner is built, configured with ``setViaCLIString``, ``prepareForUse()``-d and only then
    wrapped in capymoa's ``MOAClassifier`` (passing it unprepared raises a NullPointerException in
    capymoa 0.15.1). Whether a label was used is read from ``ALUncertainty``'s public ``costLabeling``
    count, or from ``ALRandom``'s ``getLastLabelAcqReport()``.
    """

    def __init__(
        self,
        strategy: str,
        base: str,
        budget: float,
        classes: Sequence[Any],
        features: Sequence[str],
        seed: int,
    ) -> None:
        from capymoa.base import MOAClassifier
        from moa.classifiers.active import ALRandom, ALUncertainty

        if strategy not in MOA_STRATEGIES:
            raise ValueError(f"unknown MOA strategy {strategy!r}; choose one of {MOA_STRATEGIES}")
        self.features = list(features)
        self.index = {c: i for i, c in enumerate(classes)}
        self.classes = list(classes)
        self.schema = _moa_schema(self.features, len(self.classes))
        if strategy == "ALRandom":
            learner = ALRandom()
            learner.getOptions().setViaCLIString(f"-l {base} -b (FixedBM -b {budget})")
        else:
            learner = ALUncertainty()
            learner.getOptions().setViaCLIString(f"-l {base} -d {strategy} -b {budget}")
        learner.prepareForUse()
        self.random = strategy == "ALRandom"
        self.java = learner
        self.classifier = MOAClassifier(learner, schema=self.schema, random_seed=seed)

    def _row(self, x: dict[str, Any]) -> np.ndarray:
        return _moa_row(self.features, x)

    def predict_one(self, x: dict[str, Any]) -> Any:
        from capymoa.core import Instance

        index = self.classifier.predict(Instance.from_array(self.schema, self._row(x)))
        return None if index is None else self.classes[int(index)]

    def offer_one(self, x: dict[str, Any], y: Any) -> bool:
        """Show MOA the labeled event; ``True`` when it used (paid for) the label."""
        from capymoa.core import LabeledInstance

        instance = LabeledInstance.from_array(self.schema, self._row(x), self.index[y])
        if self.random:
            self.classifier.train(instance)
            return int(self.java.getLastLabelAcqReport()) > 0  # read and reset
        before = int(self.java.costLabeling)
        self.classifier.train(instance)
        return int(self.java.costLabeling) > before


class MoaVarUncertaintyAtAsk:
    """MOA's ``VarUncertainty`` deciding when the event arrives, on MOA's own learner (river's contract).

    ``ALUncertainty`` decides inside ``trainOnInstance``, with the label in hand; under a label delay
    ``prequential_offer`` therefore lets it decide ``delay`` events after the event, with a model that
    has learned every label used before it. This is ``ALUncertainty``'s budget check and ``labelVar``
    ported line by line (MOA's ``moa/classifiers/active/ALUncertainty.java``): the running ratio of labels
    used to events, and while it is below the budget, use the label when the normalised maximum posterior
    is below the threshold ``θ`` (starting at 1), then ``θ ← θ·(1−s)``, else ``θ ← θ·(1+s)``. It decides in
    ``predict_one``, when the event arrives, and ``activestream.evaluate.prequential`` hands it the label
    ``delay`` events later, as it does for activestream and every other river-contract peer. At delay 0 it
    makes the same decisions as ``ALUncertainty`` (``tests/benchmarks/test_field_benchmark.py``).
    """

    def __init__(
        self,
        base: str,
        budget: float,
        classes: Sequence[Any],
        features: Sequence[str],
        seed: int,
        step: float = 0.01,
    ) -> None:
        from capymoa.base import MOAClassifier
        from moa.classifiers import Classifier
        from moa.options import ClassOption

        self.features = list(features)
        self.index = {c: i for i, c in enumerate(classes)}
        self.classes = list(classes)
        self.schema = _moa_schema(self.features, len(self.classes))
        learner = ClassOption.cliStringToObject(base.strip("()"), Classifier, None)
        learner.prepareForUse()
        self.java = learner
        self.classifier = MOAClassifier(learner, schema=self.schema, random_seed=seed)
        self.budget, self.step = budget, step
        self.threshold = 1.0
        self.events = self.used = 0

    def _max_posterior(self, instance: Any) -> float:
        # ALUncertainty.getMaxPosterior: normalise the votes when they sum to more than 0.
        votes = np.asarray(self.java.getVotesForInstance(instance.java_instance), dtype=float)
        if len(votes) <= 1:
            return 0.0
        total = votes.sum()
        return float(votes.max() / total) if total > 0 else float(votes.max())

    def predict_one(self, x: dict[str, Any]) -> tuple[Any, bool]:
        from capymoa.core import Instance

        instance = Instance.from_array(self.schema, _moa_row(self.features, x))
        index = self.classifier.predict(instance)
        y_pred = None if index is None else self.classes[int(index)]
        self.events += 1
        if self.used / self.events >= self.budget:  # costNow < budget, or no decision at all
            return y_pred, False
        if self._max_posterior(instance) < self.threshold:
            self.threshold *= 1 - self.step
            self.used += 1
            return y_pred, True
        self.threshold *= 1 + self.step
        return y_pred, False

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        from capymoa.core import LabeledInstance

        row = _moa_row(self.features, x)
        self.classifier.train(LabeledInstance.from_array(self.schema, row, self.index[y]))


def _moa_schema(features: Sequence[str], n_classes: int) -> Any:
    from capymoa.stream import Schema

    return Schema.from_custom(
        features=[*features, "class_label"],
        target="class_label",
        categories={"class_label": [str(i) for i in range(n_classes)]},
        name="field",
    )


def _moa_row(features: Sequence[str], x: dict[str, Any]) -> np.ndarray:
    return np.fromiter((float(x[f]) for f in features), float, len(features))


def prequential_offer(
    learner: MoaUncertainty,
    stream: Iterable[tuple[dict[str, Any], Any]],
    delay: int = 0,
    curve_every: int = 500,
    window: int = 1000,
) -> PrequentialResult:
    """``activestream.evaluate.prequential`` for learners that decide with the label in hand.

    Every event is tested first; its labeled copy is offered ``delay`` events later (at once with no
    delay), and a used label counts against the budget. Offers still in flight when the stream ends are
    made after it (they count, and train a model no longer tested), as ``prequential`` counts the labels
    asked in its last ``delay`` events.
    """
    accuracy, kappa = metrics.Accuracy(), metrics.CohenKappa()
    recent: deque[bool] = deque(maxlen=window)
    in_flight: deque[tuple[int, dict[str, Any], Any]] = deque()
    curve: list[CurvePoint] = []
    n = labels = 0
    for n, (x, y) in enumerate(stream, start=1):
        y_pred = learner.predict_one(x)
        accuracy.update(y, y_pred)
        kappa.update(y, y_pred)
        recent.append(y_pred == y)
        in_flight.append((n + delay, x, y))
        while in_flight and in_flight[0][0] <= n:
            _, x_due, y_due = in_flight.popleft()
            labels += learner.offer_one(x_due, y_due)
        if n % curve_every == 0:
            curve.append(CurvePoint(n, labels, accuracy.get(), sum(recent) / len(recent)))
    while in_flight:
        _, x_due, y_due = in_flight.popleft()
        labels += learner.offer_one(x_due, y_due)
    if n and (not curve or curve[-1].n_events != n):
        curve.append(CurvePoint(n, labels, accuracy.get(), sum(recent) / len(recent)))
    return PrequentialResult(n, labels, accuracy.get(), kappa.get(), curve)
