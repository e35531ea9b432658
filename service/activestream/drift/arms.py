"""The two ways of adapting to drift (Ditzler et al. 2015), and the baseline that does not adapt.

Every arm learns from labeled examples only, **test-then-train**: it predicts the label, scores its own
prediction into its :class:`~activestream.drift.estimates.RecentAccuracy`, and only then learns it.

:class:`ActiveArm`
    *Active* adaptation: an explicit change test. A river drift detector watches the arm's prequential
    0/1 error stream. On a warning (detectors with a warning zone: DDM, EDDM, HDDM_A, HDDM_W) a
    background model starts learning; on a drift it replaces the foreground model. Detectors with no
    warning zone (ADWIN, Page–Hinkley, KSWIN, FHDDM) reset the model on a drift instead (optionally
    replaying the latest labels the detector assigns to the new concept; off by default).
:class:`PassiveArm`
    *Passive* adaptation: continuous updating with forgetting, no detector. What forgets depends on the
    base model (see the class).
:class:`NoAdaptationArm`
    Just learns: the yardstick both adaptations must beat after a drift.

>>> from river import naive_bayes
>>> arm = ActiveArm(naive_bayes.GaussianNB(), "adwin")
>>> arm.learn_one({"x": 1.0}, True)
False
>>> arm.learn_one({"x": 1.1}, True)  # predicted before learning: right this time
True
>>> arm.n_labeled, arm.n_drifts, arm.accuracy.get("all")
(2, 0, 0.5)
"""

from __future__ import annotations

import abc
import collections
from typing import ClassVar, Final, Literal

from river import base, compose, drift, linear_model, optim

from activestream.drift.detectors import (
    DEFAULT_DETECTOR,
    error_signal,
    has_warning_zone,
    is_one_sided,
    make_detector,
)
from activestream.drift.estimates import RecentAccuracy
from activestream.types import ClassLabel, Features

__all__ = [
    "ActiveArm",
    "Arm",
    "DetectorInput",
    "NoAdaptationArm",
    "PassiveArm",
    "PassiveStrategy",
    "forgets_by_itself",
]

DetectorInput = Literal["all", "unbiased"]
PassiveStrategy = Literal["auto", "sgd", "window"]

# When a two-sided detector does not say where the change began, its direction is judged on this many
# of the latest errors (about the smallest sample on which a rise of the error rate shows).
_DIRECTION_SAMPLE: Final = 30


def _argmax(proba: dict[ClassLabel, float]) -> ClassLabel | None:
    return max(proba, key=proba.__getitem__) if proba else None


class Arm(abc.ABC):
    """A classifier that adapts to drift in its own way and keeps score of itself.

    Parameters
    ----------
    model
        The river classifier the arm owns (it is trained in place; resets start from ``model.clone()``).
    estimate_window
        Effective window of the arm's :class:`~activestream.drift.estimates.RecentAccuracy`.
    """

    #: Short, bounded name of the arm (a metric label).
    kind: ClassVar[str]

    def __init__(self, model: base.Classifier, *, estimate_window: int = 100) -> None:
        self.model = model
        self.accuracy = RecentAccuracy(estimate_window)
        #: Labeled examples learned so far.
        self.n_labeled = 0

    def predict_proba_one(self, x: Features) -> dict[ClassLabel, float]:
        """Class probabilities of the model the arm serves."""
        return dict(self.model.predict_proba_one(x))

    def predict_one(self, x: Features) -> ClassLabel | None:
        """The most probable class, or ``None`` before the model has seen a label."""
        return _argmax(self.predict_proba_one(x))

    def learn_one(
        self, x: Features, y: ClassLabel, *, unbiased: bool = False, ask_proba: float | None = None
    ) -> bool:
        """Test on ``(x, y)``, score the prediction, then learn it; return whether the prediction was right.

        ``unbiased`` marks a label asked at random (an unbiased sample of the stream) and ``ask_proba``
        the probability it was asked with, when known; both only feed the accuracy estimates (and, for
        the active arm, the choice of what the detector sees).
        """
        y_pred = self.predict_one(x)
        correct = y_pred is not None and y_pred == y
        self.accuracy.update(correct, unbiased=unbiased, ask_proba=ask_proba)
        self.n_labeled += 1
        self._learn(x, y, y_pred, correct, unbiased)
        return correct

    @abc.abstractmethod
    def _learn(
        self, x: Features, y: ClassLabel, y_pred: ClassLabel | None, correct: bool, unbiased: bool
    ) -> None:
        """Adapt and learn, once the prediction for ``x`` has been scored."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_labeled={self.n_labeled}, accuracy={self.accuracy.get('all')!r})"


class NoAdaptationArm(Arm):
    """No adaptation: the model learns every label and forgets nothing on purpose.

    Constant-rate SGD still forgets by itself (see :class:`PassiveArm`), so for linear models this arm
    behaves exactly like the passive one; for the others it is the model that never lets go of an old
    concept.

    >>> from river import naive_bayes
    >>> arm = NoAdaptationArm(naive_bayes.GaussianNB())
    >>> arm.learn_one({"x": 1.0}, "a"), arm.predict_one({"x": 1.0})
    (False, 'a')
    """

    kind: ClassVar[str] = "baseline"

    def _learn(
        self, x: Features, y: ClassLabel, y_pred: ClassLabel | None, correct: bool, unbiased: bool
    ) -> None:
        self.model.learn_one(x, y)


class ActiveArm(Arm):
    """Active adaptation: a drift detector on the arm's error stream triggers the reaction.

    For each labeled example, in this order: predict, feed the detector the 0/1 error, react to what it
    says, then learn the example (with the background model too while there is one).

    - **Warning** (detectors with a warning zone): a background model is created at the start of the
      warning period and learns every label from then on. If the warning clears without a drift, the
      background model is dropped — it was a false alarm (the DDM rule of Gama et al. 2004).
    - **Drift**: the background model, if there is one, replaces the foreground model; otherwise the
      model is reset to an untrained clone. With ``replay > 0``, the (at most ``replay``) latest labeled
      examples the detector assigns to the new concept are replayed into it (ADWIN: its window after
      the cut; KSWIN: its recent sample; others: none). Off by default: ADWIN keeps the *longest*
      recent window that does not differ significantly, which usually reaches back before the change,
      so the replay mixes old-concept labels into the fresh model. Run with the protocol of
      ``benchmarks/drift_suite.py`` (seeds 1–2, 5% and 10%, logreg and ht, sea_abrupt, agrawal_gradual,
      stagger_recurring and elec), replaying up to 200 labels lowered the mean accuracy of the active
      arm by one point: a Hoeffding tree on STAGGER at 5% lost 13–16 points (the contradicting labels
      keep its split tests undecided), against at most +5.5 on Agrawal.
    - **Direction.** Two-sided detectors (ADWIN, KSWIN, Page–Hinkley in ``mode="both"``) also fire when
      the error *falls* — a young model learning, or the arm recovering from a previous drift. Throwing
      a model away for improving would be absurd, so such a detection only counts as a drift if the
      error rose: for ADWIN, the mean of the window part it keeps exceeds that of the part it drops
      (the test of MOA's ADWIN bagging); for the others, the error over the detector's latest samples
      (KSWIN's recent sample, else the last 30) exceeds the error over the samples before them. A
      detection judged an improvement is counted in ``n_ignored`` and nothing else happens.

    Every river detector restarts from scratch on the update after a detection, so the next drift is
    judged on the new concept only.

    Parameters
    ----------
    model
        The river classifier to adapt.
    detector
        A name for :func:`~activestream.drift.detectors.make_detector` or a river drift detector instance
        (owned by the arm from then on).
    seed
        Seeds the detector when given by name (only KSWIN uses it).
    detector_input
        Which errors the detector sees: ``"all"`` labeled examples (default) or only the ``"unbiased"``
        ones (asked at random). With ``"unbiased"``, if more than ``fallback_after`` labels in a row were
        not random (no Split policy, say), the detector sees every label until a random one arrives
        again, so a misconfiguration cannot silence it. ``"all"`` is the default on the evidence of
        ``benchmarks/drift_suite.py``: a detector needs samples more than it needs unbiased ones — the
        errors on uncertainty-chosen labels are higher, but they rise at a drift too — and fed only the
        random fifth of a 5–10% budget it missed more drifts and found the others 900–2,300 events
        later, with no fewer false alarms. (The accuracy estimates, which compare arms, are another
        matter: there the bias matters, see :mod:`activestream.drift.estimates`.)
    replay
        How many recent labeled examples are kept for replay after a reset (``0``, the default: none).
    fallback_after
        See ``detector_input``.
    history
        How many detection positions (and latest errors, for the direction test) are remembered.
    estimate_window
        Effective window of the accuracy estimates.

    Examples
    --------
    SEA concept 0, then concept 3 (a different threshold) from the 3,000th example on:

    >>> import itertools
    >>> from river import datasets, naive_bayes
    >>> stream = itertools.chain(datasets.synth.SEA(variant=0, seed=1).take(3000),
    ...                          datasets.synth.SEA(variant=3, seed=2).take(3000))
    >>> arm = ActiveArm(naive_bayes.GaussianNB(), "adwin")
    >>> for x, y in stream:
    ...     _ = arm.learn_one(x, y)
    >>> arm.n_drifts >= 1 and 3000 < arm.drift_positions[0] < 3300
    True

    """

    kind: ClassVar[str] = "active"

    def __init__(
        self,
        model: base.Classifier,
        detector: str | base.Base = DEFAULT_DETECTOR,
        *,
        seed: int | None = None,
        detector_input: DetectorInput = "all",
        replay: int = 0,
        fallback_after: int = 200,
        history: int = 1000,
        estimate_window: int = 100,
    ) -> None:
        super().__init__(model, estimate_window=estimate_window)
        if detector_input not in ("all", "unbiased"):
            raise ValueError(f"detector_input must be 'all' or 'unbiased', got {detector_input!r}")
        self.detector = make_detector(detector, seed=seed) if isinstance(detector, str) else detector
        self.detector_input = detector_input
        self.fallback_after = fallback_after
        self.warning_zone = has_warning_zone(self.detector)
        self.one_sided = is_one_sided(self.detector)
        #: The model learning the new concept during a warning, if any.
        self.background: base.Classifier | None = None
        #: Accepted drifts (adaptations), warnings started, and two-sided detections judged improvements.
        self.n_drifts = 0
        self.n_warnings = 0
        self.n_ignored = 0
        #: Whether the last labeled example triggered an adaptation.
        self.drift_detected = False
        #: ``n_labeled`` at each accepted drift (the latest ``history`` of them).
        self.drift_positions: collections.deque[int] = collections.deque(maxlen=history)
        # (label index, error) of what the detector saw since its last reset: for the direction test and
        # to map a detector's post-change sample size back to labeled examples.
        self._errors: collections.deque[tuple[int, int]] = collections.deque(maxlen=history)
        # (label index, x, y) of the latest labeled examples, for replay after a reset.
        self._recent: collections.deque[tuple[int, Features, ClassLabel]] = collections.deque(maxlen=replay)
        self._since_unbiased = 0

    @property
    def labels_since_drift(self) -> int:
        """Labeled examples learned since the last accepted drift (since the start if none)."""
        return self.n_labeled - (self.drift_positions[-1] if self.drift_positions else 0)

    def _monitored(self, unbiased: bool) -> bool:
        self._since_unbiased = 0 if unbiased else self._since_unbiased + 1
        return self.detector_input == "all" or unbiased or self._since_unbiased > self.fallback_after

    def _learn(
        self, x: Features, y: ClassLabel, y_pred: ClassLabel | None, correct: bool, unbiased: bool
    ) -> None:
        self.drift_detected = False
        # A model that has seen no label yet makes no prediction, and no error to monitor.
        if self._monitored(unbiased) and y_pred is not None:
            self._watch(0 if correct else 1)
        self.model.learn_one(x, y)
        if self.background is not None:
            self.background.learn_one(x, y)
        if self._recent.maxlen:
            # Copies: the caller may reuse or mutate ``x`` after learning.
            self._recent.append((self.n_labeled, dict(x), y))

    def _watch(self, error: int) -> None:
        self._errors.append((self.n_labeled, error))
        adwin = isinstance(self.detector, drift.ADWIN)
        before = (self.detector.total, self.detector.width) if adwin else None
        self.detector.update(error_signal(self.detector, error))
        if self.detector.drift_detected:
            if self.one_sided or self._error_rose(error, before):
                self._adapt()
            else:
                self.n_ignored += 1
            # The detector restarts on its next update: so does the record of what it saw.
            self._errors.clear()
        elif self.warning_zone:
            if self.detector.warning_detected:
                if self.background is None:
                    self.background = self.model.clone()
                    self.n_warnings += 1
            else:
                self.background = None

    def _post_change_size(self) -> int | None:
        """How many of the detector's latest samples it assigns to the new concept, if it says."""
        if isinstance(self.detector, drift.ADWIN):
            return int(self.detector.width)
        if isinstance(self.detector, drift.KSWIN):
            return int(self.detector.stat_size)
        return None

    def _error_rose(self, error: int, adwin_before: tuple[float, int] | None) -> bool:
        """Whether the error after the detected change is higher than before it."""
        if adwin_before is not None:
            # ADWIN has just cut its window in two and kept the recent part: compare the two exactly.
            total, width = adwin_before
            kept_total, kept = self.detector.total, self.detector.width
            dropped = width + 1 - kept
            if kept < 1 or dropped < 1:
                return True
            return kept_total / kept > (total + error - kept_total) / dropped
        errors = [e for _, e in self._errors]
        recent = self._post_change_size() or _DIRECTION_SAMPLE
        if len(errors) < 2 * recent:
            return True  # too little before the change to compare with: take the detector's word
        after, before = errors[-recent:], errors[:-recent]
        return sum(after) / len(after) > sum(before) / len(before)

    def _adapt(self) -> None:
        self.n_drifts += 1
        self.drift_detected = True
        self.drift_positions.append(self.n_labeled)
        if self.background is not None:
            self.model, self.background = self.background, None
            return
        size = self._post_change_size()
        self.model = self.model.clone()
        if size and self._errors:
            first = self._errors[-min(size, len(self._errors))][0]
            for index, x, y in self._recent:
                if index >= first:
                    self.model.learn_one(x, y)

    def __repr__(self) -> str:
        return (
            f"ActiveArm(detector={type(self.detector).__name__}, n_labeled={self.n_labeled}, "
            f"n_drifts={self.n_drifts}, accuracy={self.accuracy.get('all')!r})"
        )


def forgets_by_itself(model: base.Classifier) -> bool:
    """Whether ``model`` (or a pipeline's final step) is a linear model trained with constant-rate SGD.

    Such a model forgets exponentially by itself: each update moves the weights by a constant step,
    so the influence of an example decays geometrically with the updates after it (there is no
    ``1/t`` schedule to freeze the weights). Passive–aggressive classifiers also take steps that do not
    shrink with time. Adaptive optimisers (AdaGrad's step shrinks with the gradients seen) do not count.

    >>> from river import linear_model, naive_bayes, optim, preprocessing
    >>> forgets_by_itself(preprocessing.StandardScaler() | linear_model.LogisticRegression())
    True
    >>> forgets_by_itself(linear_model.LogisticRegression(optimizer=optim.AdaGrad()))
    False
    >>> forgets_by_itself(naive_bayes.GaussianNB())
    False
    """
    final = list(model.steps.values())[-1] if isinstance(model, compose.Pipeline) else model
    if isinstance(final, linear_model.PAClassifier):
        return True
    if isinstance(final, linear_model.LogisticRegression | linear_model.SoftmaxRegression):
        optimizer = final.optimizer
        return isinstance(optimizer, optim.SGD) and isinstance(optimizer.lr, optim.schedulers.Constant)
    return False


class PassiveArm(Arm):
    """Passive adaptation: continuous updating with forgetting, and no detector.

    The forgetting suits the base model (``strategy="auto"`` picks it with :func:`forgets_by_itself`):

    ``"sgd"`` — linear models trained with constant-rate SGD (the ``logreg`` of
        :mod:`activestream.models`). The constant step *is* a forgetting mechanism (an exponential one,
        with a memory of the order of ``1/lr`` updates), so the arm just keeps learning. Nothing is added:
        an extra decay would only trade stationary accuracy for the same adaptation. For these models the
        passive arm and :class:`NoAdaptationArm` are the same learner. (A ``StandardScaler`` in front
        keeps its running statistics forever; with drift in the inputs, not just the concept, its
        scaling lags.)
    ``"window"`` — every other model (naive Bayes, Hoeffding trees, ...), which otherwise remember every
        example: a sliding window of about the last ``window`` labels, made of two **staggered** models.
        A second, fresh model starts when the first has seen ``window/2`` labels; when the first has
        seen ``window``, it is dropped, the second (now ``window/2`` labels old) takes over and a fresh
        one starts. The served model has therefore always learned between ``window/2`` and ``window``
        of the latest labels (after the first ``window/2``) and knows nothing older.

        We chose this over retraining on a buffer of the last ``window`` labels because it costs two
        ``learn_one`` per label instead of bursts of ``window``, stores no examples, and works with
        any river classifier; and over decaying example weights because river's trees and naive Bayes
        take weights as counts (exponentially growing weights overflow and distort the split tests).

        HAT and ARF already adapt by themselves (they contain ADWIN detectors: they are *active* inside);
        the window applies on top.

    Parameters
    ----------
    model
        The river classifier to adapt.
    strategy
        ``"auto"`` (default), ``"sgd"`` or ``"window"``, as above.
    window
        Labels remembered by the ``"window"`` strategy (an even number ``>= 2``; odd values round down).
    estimate_window
        Effective window of the accuracy estimates.

    Examples
    --------
    >>> from river import naive_bayes
    >>> arm = PassiveArm(naive_bayes.GaussianNB(), window=4)
    >>> arm.strategy
    'window'
    >>> for i in range(9):
    ...     _ = arm.learn_one({"x": float(i)}, i % 2 == 0)
    >>> arm.ages  # the served model has seen the last 3 labels, the next one the last 1
    [3, 1]

    """

    kind: ClassVar[str] = "passive"

    def __init__(
        self,
        model: base.Classifier,
        *,
        strategy: PassiveStrategy = "auto",
        window: int = 500,
        estimate_window: int = 100,
    ) -> None:
        super().__init__(model, estimate_window=estimate_window)
        if strategy not in ("auto", "sgd", "window"):
            raise ValueError(f"strategy must be 'auto', 'sgd' or 'window', got {strategy!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise ValueError(f"window must be an int >= 2 labels, got {window!r}")
        if strategy == "auto":
            strategy = "sgd" if forgets_by_itself(model) else "window"
        self.strategy: Literal["sgd", "window"] = strategy
        self.window = window - window % 2
        # Oldest first; the oldest is served (``self.model``) and the younger one is the next to serve.
        self._next: base.Classifier | None = None
        #: Labels learned by the served model and by the next one.
        self.ages = [0]

    def _learn(
        self, x: Features, y: ClassLabel, y_pred: ClassLabel | None, correct: bool, unbiased: bool
    ) -> None:
        self.model.learn_one(x, y)
        if self.strategy == "sgd":
            self.ages[0] += 1
            return
        if self._next is not None:
            self._next.learn_one(x, y)
        self.ages = [age + 1 for age in self.ages]
        if self.ages[0] >= self.window and self._next is not None:
            self.model, self._next = self._next, None
            self.ages = self.ages[1:]
        if self._next is None and self.ages[0] >= self.window // 2:
            self._next = self.model.clone()
            self.ages.append(0)

    def __repr__(self) -> str:
        return (
            f"PassiveArm(strategy={self.strategy!r}, window={self.window}, n_labeled={self.n_labeled}, "
            f"accuracy={self.accuracy.get('all')!r})"
        )
