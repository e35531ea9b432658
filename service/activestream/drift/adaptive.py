"""Active and passive drift adaptation side by side, on the same labels, serving the better one.

:class:`DriftAdaptiveClassifier` is a river classifier holding two arms (see
:mod:`activestream.drift.arms`): an :class:`~activestream.drift.arms.ActiveArm` (a drift detector
triggers a reaction) and a :class:`~activestream.drift.arms.PassiveArm` (continuous updating with
forgetting). Both learn the **same labeled examples in the same order**, each tested before it learns,
so their recent accuracies are a paired comparison. Predictions come from the serving arm: a fixed one,
or the *champion*, the arm with the better recent accuracy estimate, with hysteresis.

Because the labels an active learner asks for are mostly the hard cases, the accuracy estimates prefer
the labels asked at random (``learn_one(x, y, unbiased=True)``, Split's random part), then
inverse-probability weighting (``ask_proba=``), and only then all labels (biased low); see
:mod:`activestream.drift.estimates`.

It drops into an :class:`~activestream.learner.ActiveLearner` like any river classifier.

>>> import itertools
>>> from river import datasets
>>> stream = itertools.chain(datasets.synth.SEA(variant=0, seed=1).take(2000),
...                          datasets.synth.SEA(variant=3, seed=2).take(2000))
>>> model = DriftAdaptiveClassifier("gnb", detector="adwin", seed=1)
>>> for i, (x, y) in enumerate(stream):
...     model.learn_one(x, y, unbiased=i % 5 == 0)  # every fifth label asked at random
>>> status = model.status()
>>> status.drifts, status.estimate, status.passive_strategy
(1, 'unbiased', 'window')
>>> status.accuracy_active > 0.9 and status.accuracy_passive > 0.9
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from river import base

from activestream.drift.arms import (
    ActiveArm,
    Arm,
    DetectorInput,
    NoAdaptationArm,
    PassiveArm,
    PassiveStrategy,
)
from activestream.drift.detectors import DEFAULT_DETECTOR, detector_name, make_detector
from activestream.drift.estimates import choose_source
from activestream.models import make_model
from activestream.types import ClassLabel, Features

__all__ = ["DriftAdaptiveClassifier", "DriftStatus", "Serve"]

Serve = Literal["champion", "active", "passive"]

#: How many recent drift positions ``status()`` reports.
_STATUS_POSITIONS = 10


@dataclass(frozen=True, slots=True)
class DriftStatus:
    """A snapshot of a :class:`DriftAdaptiveClassifier`, for metrics and the audit trail.

    Accuracies are recent estimates from the ``estimate`` source (``None`` before any sample of it);
    positions and counts are in labeled examples.
    """

    #: The arm whose predictions are served: ``"active"`` or ``"passive"``.
    serving: str
    #: How many times the champion changed.
    champion_switches: int
    #: Where the accuracies come from: ``"unbiased"``, ``"ipw"`` or ``"all"`` (biased low).
    estimate: str
    accuracy_active: float | None
    accuracy_passive: float | None
    #: ``None`` unless the no-adaptation baseline is tracked.
    accuracy_baseline: float | None
    #: The active arm's detector (registry name); the passive arm has none.
    detector: str
    #: Drifts the active arm reacted to, warnings it started, and two-sided detections it judged
    #: to be improvements (ignored).
    drifts: int
    warnings: int
    ignored: int
    #: The latest drift positions (at most 10), oldest first.
    drift_positions: tuple[int, ...]
    labels_since_drift: int
    n_labeled: int
    n_unbiased: int
    #: How the passive arm forgets: ``"sgd"`` or ``"window"``.
    passive_strategy: str


class DriftAdaptiveClassifier(base.Classifier):
    """Active and passive drift adaptation on the same labels; serves the champion.

    Parameters
    ----------
    model
        A name for :func:`~activestream.models.make_model` or a river classifier (cloned: the instance
        given is left untouched). Each arm gets its own fresh copy.
    detector
        The active arm's drift detector: a name for :func:`~activestream.drift.detectors.make_detector`
        (``"adwin"`` by default) or a river detector instance (cloned).
    serve
        Whose predictions to serve: ``"champion"`` (default; the arm with the better recent accuracy
        estimate), ``"active"`` or ``"passive"``. Both arms learn either way.
    seed
        Seeds the model (when given by name) and the detector (KSWIN only).
    detector_params
        Extra parameters for the detector when it is given by name, e.g. ``{"delta": 0.01}``.
    detector_input
        What the detector sees: the errors on ``"all"`` labels (default) or only on ``"unbiased"`` ones;
        see :class:`~activestream.drift.arms.ActiveArm`.
    passive
        The passive arm's forgetting: ``"auto"`` (default), ``"sgd"`` or ``"window"``; see
        :class:`~activestream.drift.arms.PassiveArm`.
    window
        Labels the passive arm's ``"window"`` strategy remembers.
    replay
        Labeled examples the active arm keeps to replay into a reset model (``0``, the default: none;
        see :class:`~activestream.drift.arms.ActiveArm` for why).
    estimate_window
        Effective window of the accuracy estimates, in samples of the source used.
    min_estimate
        Samples a source needs before it is used, and before the champion may change.
    hysteresis
        The challenger must be this much more accurate (absolute) than the champion to take over, so
        that noise in two close estimates does not flip the serving arm back and forth.
    track_baseline
        Also run a no-adaptation arm (for benchmarks; it costs one more model).

    Examples
    --------
    The champion changes when the other arm is clearly better. Here the passive arm forgets a concept
    within 200 labels, while the active arm's detector is made deaf (an ADWIN with a vanishing ``delta``)
    and keeps the old concept:

    >>> import itertools
    >>> from river import datasets
    >>> stream = itertools.chain(datasets.synth.SEA(variant=0, seed=1).take(2000),
    ...                          datasets.synth.SEA(variant=3, seed=2).take(2000))
    >>> model = DriftAdaptiveClassifier("gnb", detector_params={"delta": 1e-300}, window=200,
    ...                                 track_baseline=True)
    >>> for x, y in stream:
    ...     model.learn_one(x, y)
    >>> status = model.status()
    >>> status.drifts, status.serving, status.champion_switches >= 1
    (0, 'passive', True)
    >>> status.accuracy_passive > status.accuracy_active
    True
    >>> sorted(model.arm_predictions({"0": 5.0, "1": 5.0, "2": 1.0}))
    ['active', 'baseline', 'passive']

    """

    def __init__(
        self,
        model: str | base.Classifier = "logreg",
        detector: str | base.Base = DEFAULT_DETECTOR,
        serve: Serve = "champion",
        seed: int | None = None,
        *,
        detector_params: dict[str, Any] | None = None,
        detector_input: DetectorInput = "all",
        passive: PassiveStrategy = "auto",
        window: int = 500,
        replay: int = 0,
        estimate_window: int = 100,
        min_estimate: int = 30,
        hysteresis: float = 0.02,
        track_baseline: bool = False,
    ) -> None:
        if serve not in ("champion", "active", "passive"):
            raise ValueError(f"serve must be 'champion', 'active' or 'passive', got {serve!r}")
        if not 0.0 <= hysteresis < 1.0:
            raise ValueError(f"hysteresis must be an accuracy difference in [0, 1), got {hysteresis!r}")
        self.model = model
        self.detector = detector
        self.serve = serve
        self.seed = seed
        self.detector_params = detector_params
        self.detector_input = detector_input
        self.passive = passive
        self.window = window
        self.replay = replay
        self.estimate_window = estimate_window
        self.min_estimate = min_estimate
        self.hysteresis = hysteresis
        self.track_baseline = track_baseline

        template = make_model(model, seed) if isinstance(model, str) else model.clone()
        if isinstance(detector, str):
            detector_instance = make_detector(detector, seed=seed, **(detector_params or {}))
        else:
            detector_instance = detector.clone(detector_params or None)
        self._template = template
        self._active = ActiveArm(
            template.clone(),
            detector_instance,
            detector_input=detector_input,
            replay=replay,
            estimate_window=estimate_window,
        )
        self._passive = PassiveArm(
            template.clone(), strategy=passive, window=window, estimate_window=estimate_window
        )
        self._baseline = (
            NoAdaptationArm(template.clone(), estimate_window=estimate_window) if track_baseline else None
        )
        self._serving: Literal["active", "passive"] = "active" if serve == "champion" else serve
        self._switches = 0
        # Labels seen, in order of appearance (a dict as an ordered set): a freshly reset or windowed
        # model may not know them all, but the probabilities always name every one.
        self._classes: dict[ClassLabel, None] = {}

    @property
    def _multiclass(self) -> bool:  # type: ignore[override]
        return bool(self._template._multiclass)

    @property
    def drift_template(self) -> base.Classifier:
        """The untrained model both arms are built from (what ``models.binary_only`` judges)."""
        return self._template

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {"model": "logreg"}
        yield {"model": "gnb", "detector": "ddm", "serve": "passive", "window": 50}
        yield {"model": "ht", "detector": "kswin", "seed": 1, "track_baseline": True}

    # -- serving ------------------------------------------------------------------------------------

    @property
    def serving(self) -> str:
        """The arm whose predictions are served: ``"active"`` or ``"passive"``."""
        return self._serving

    @property
    def serving_model(self) -> base.Classifier:
        """The river model currently served (e.g. for measures that read a linear model's weights)."""
        return self._active.model if self._serving == "active" else self._passive.model

    @property
    def drift_detected(self) -> bool:
        """Whether the last ``learn_one`` made the active arm react to a drift (e.g. to boost the budget)."""
        return self._active.drift_detected

    def _arms(self) -> dict[str, Arm]:
        arms: dict[str, Arm] = {"active": self._active, "passive": self._passive}
        if self._baseline is not None:
            arms["baseline"] = self._baseline
        return arms

    def _complete(self, proba: dict[ClassLabel, float]) -> dict[ClassLabel, float]:
        for label in self._classes:
            proba.setdefault(label, 0.0)
        return proba

    def predict_proba_one(self, x: Features, **kwargs: Any) -> dict[ClassLabel, float]:
        arm = self._active if self._serving == "active" else self._passive
        return self._complete(arm.predict_proba_one(x))

    def arm_predictions(self, x: Features) -> dict[str, ClassLabel | None]:
        """Every arm's predicted class for ``x`` (for shadow metrics; only the serving one is served)."""
        return {kind: arm.predict_one(x) for kind, arm in self._arms().items()}

    # -- learning -----------------------------------------------------------------------------------

    def learn_one(
        self,
        x: Features,
        y: ClassLabel,
        *,
        unbiased: bool = False,
        ask_proba: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Feed one labeled example to every arm, then review the champion.

        Parameters
        ----------
        x, y
            The labeled example.
        unbiased
            The label was asked at random (``Decision.reason == "random"``): an unbiased sample.
        ask_proba
            The probability with which the label was asked, if known (enables inverse-probability
            weighting of the accuracy estimates).
        kwargs
            Ignored (accepted so that wrappers may pass more than this classifier uses).
        """
        self._classes.setdefault(y, None)
        for arm in self._arms().values():
            arm.learn_one(x, y, unbiased=unbiased, ask_proba=ask_proba)
        if self.serve == "champion":
            self._review_champion()

    def _review_champion(self) -> None:
        source = choose_source(self._active.accuracy, self.min_estimate)
        if self._active.accuracy.counts[source] < self.min_estimate:
            return
        accuracy = {kind: self._arms()[kind].accuracy.get(source) or 0.0 for kind in ("active", "passive")}
        challenger: Literal["active", "passive"] = "passive" if self._serving == "active" else "active"
        if accuracy[challenger] > accuracy[self._serving] + self.hysteresis:
            self._serving = challenger
            self._switches += 1

    # -- reporting ----------------------------------------------------------------------------------

    def status(self) -> DriftStatus:
        """A frozen snapshot of the arms, the detector and the serving decision."""
        active, passive, baseline = self._active, self._passive, self._baseline
        source = choose_source(active.accuracy, self.min_estimate)
        return DriftStatus(
            serving=self._serving,
            champion_switches=self._switches,
            estimate=source,
            accuracy_active=active.accuracy.get(source),
            accuracy_passive=passive.accuracy.get(source),
            accuracy_baseline=baseline.accuracy.get(source) if baseline is not None else None,
            detector=detector_name(active.detector),
            drifts=active.n_drifts,
            warnings=active.n_warnings,
            ignored=active.n_ignored,
            drift_positions=tuple(active.drift_positions)[-_STATUS_POSITIONS:],
            labels_since_drift=active.labels_since_drift,
            n_labeled=active.n_labeled,
            n_unbiased=active.accuracy.counts["unbiased"],
            passive_strategy=passive.strategy,
        )
