"""Batch scoring: class probabilities and informativeness of a whole polled batch of events at once.

The per-event path costs most of its time in river's dict-based pipeline and in the measure's Python
arithmetic, once per event. Between two labels the model does not change, so a run of events can be
scored together: its feature matrix (numpy) goes through the model's parameters, read once per run, and
the measure is computed on the matrix of probabilities. The policy still decides event by event, in
order (it is sequential and stateful), through its usual ``decide``.

**Invariant**: the decisions, scores and thresholds are those of ``ActiveLearner.decide`` called on each
event in turn, bit for bit where it is vectorised (the same IEEE operations in the same order;
``math.exp``/``math.log`` rather than numpy's vectorised ones, whose last bit may differ). What cannot be
vectorised falls back to the per-event calls, row by row, so any model and measure works:

- models: ``activestream.models``' ``"logreg"`` (the scaled logistic regression pipeline), served
  directly or by a :class:`~activestream.drift.DriftAdaptiveClassifier`, for events whose features are
  all numbers (string features go through the one-hot encoder: per event);
- measures: least confidence, margin and entropy (vectorised); every other measure per event, with the
  probabilities computed in the batch.

Pure: no I/O; the caller passes whatever should happen after each decision (the drift watch's
label-free signal, which may boost the policy, so it must run between two decisions).

>>> from river import datasets
>>> from activestream.learner import make_learner
>>> stream = list(datasets.synth.SEA(seed=1).take(300))
>>> one, many = make_learner("logreg", seed=3), make_learner("logreg", seed=3)
>>> for x, y in stream[:100]:
...     one.learn_one(x, y); many.learn_one(x, y)
>>> rows = [x for x, _ in stream[100:]]
>>> by_event = [one.decide(x) for x in rows]
>>> by_batch = decide_batch(many, rows)
>>> by_batch == by_event
True
>>> vectorisable(many.classifier)
True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import base, compose, linear_model, optim, preprocessing

from activestream.decide.base import Policy, Verdict
from activestream.decide.policies import BELOW_THRESHOLD
from activestream.drift.adaptive import DriftAdaptiveClassifier
from activestream.learner import ActiveLearner, Decision
from activestream.models import NUMBER_TYPES, ScaledPipeline, features_parts
from activestream.score.uncertainty import Entropy, LeastConfidence, Margin
from activestream.types import ClassLabel, Features

__all__ = ["LinearSnapshot", "Scored", "decide_batch", "predict_many", "score_batch", "vectorisable"]

#: Measures computed on the matrix of probabilities (exact types: a subclass may score differently).
_VECTORISED_MEASURES = (LeastConfidence, Margin, Entropy)


@dataclass(slots=True)  # not frozen: one per event (see ``Verdict``)
class Scored:
    """One event's probabilities and score, before any policy decision."""

    proba: dict[ClassLabel, float]
    score: float


@dataclass(frozen=True, slots=True)
class LinearSnapshot:
    """The parameters of a scaled logistic regression pipeline, read once for a run of events.

    The model must be ``(SelectType(Number) | StandardScaler) + (SelectType(str) | OneHotEncoder)`` then
    ``LogisticRegression`` with the log loss, as ``activestream.models.make_model("logreg")`` builds it.
    """

    means: dict[str, float]
    variances: dict[str, float]
    weights: dict[str, float]
    intercept: float
    #: The one-hot columns the encoder emits (as zeros) for every event: a numeric feature of the same
    #: name would take their place in river's summation order, so such rows go per event.
    one_hot: frozenset[str]

    @classmethod
    def of(cls, model: base.Classifier) -> LinearSnapshot | None:
        """The snapshot of ``model``, or ``None`` when it is not that pipeline.

        >>> from activestream.models import make_model
        >>> LinearSnapshot.of(make_model("logreg")).intercept
        0.0
        >>> LinearSnapshot.of(make_model("gnb")) is None
        True
        """
        parts = _logreg_parts(model)
        if parts is None:
            return None
        scaler, encoder, regression = parts
        return cls(
            means=dict(scaler.means),
            variances=dict(scaler.vars),
            weights=regression._weights.to_dict(),
            intercept=float(regression.intercept),
            one_hot=frozenset(encoder._zero_dict),
        )

    def positive_proba(self, keys: Sequence[str], matrix: np.ndarray) -> list[float] | None:
        """``P(True)`` for each row of ``matrix``, whose columns are the features ``keys``, in that order.

        Mirrors river: each feature is scaled ``(x - mean) / var ** 0.5`` (``0`` without variance),
        multiplied by its weight (``0`` if it has none; NaN and infinities propagate as in river), the
        products summed in the event's feature order, the intercept added and the sigmoid (clamped at
        ±30) applied. ``None`` when a variance is negative (river would compute with complex numbers).
        """
        logits = np.zeros(len(matrix))
        with np.errstate(all="ignore"):  # overflows give inf and NaN silently, as Python floats do
            return self._logits(keys, matrix, logits)

    def _logits(self, keys: Sequence[str], matrix: np.ndarray, logits: np.ndarray) -> list[float] | None:
        for column, key in enumerate(keys):
            variance = self.variances.get(key, 0.0)
            if variance < 0.0:
                return None
            weight = self.weights.get(key, 0.0)
            if variance:  # (NaN included, as river's ``if v``)
                logits += weight * ((matrix[:, column] - self.means.get(key, 0.0)) / variance**0.5)
            else:
                logits += weight * 0.0
        logits += self.intercept
        return [_sigmoid(z) for z in logits.tolist()]


def _sigmoid(z: float) -> float:
    # river.utils.math.sigmoid, including its clamp (which returns the ints 0 and 1).
    if z < -30:
        return 0
    if z > 30:
        return 1
    return 1 / (1 + math.exp(-z))


def _logreg_parts(
    model: base.Classifier,
) -> tuple[preprocessing.StandardScaler, preprocessing.OneHotEncoder, linear_model.LogisticRegression] | None:
    if type(model) not in _PIPELINES or compose.Pipeline._LEARN_UNSUPERVISED_DURING_PREDICT:
        return None
    steps = list(model.steps.values())
    if len(steps) != 2:
        return None
    union, regression = steps
    if (
        type(regression) is not linear_model.LogisticRegression
        or type(regression.loss) is not optim.losses.Log
    ):
        return None
    parts = features_parts(union)
    return None if parts is None else (*parts, regression)


def _served(classifier: base.Classifier) -> tuple[base.Classifier, DriftAdaptiveClassifier | None]:
    """The plain model whose probabilities are served, and the adaptive wrapper around it if any."""
    if isinstance(classifier, DriftAdaptiveClassifier):
        return classifier.serving_model, classifier
    return classifier, None


def vectorisable(classifier: base.Classifier) -> bool:
    """Whether batch scoring computes this classifier's probabilities on a matrix (else per event).

    >>> from activestream.models import make_model
    >>> vectorisable(make_model("logreg")), vectorisable(make_model("hat"))
    (True, False)
    """
    return _logreg_parts(_served(classifier)[0]) is not None


#: river's pipeline (older checkpoints) and the registry's.
_PIPELINES = (compose.Pipeline, ScaledPipeline)


def _vector_positive(
    classifier: base.Classifier, rows: Sequence[Features]
) -> tuple[list[float | None], list[ClassLabel], list[tuple[list[int], list[float]]]]:
    """The positive class's probability of each row the vectorised path covers (``None`` for the
    others), the extra classes the served probabilities list after ``False`` and ``True`` (at 0), and
    the groups of rows scored together (each group's rows and probabilities)."""
    model, adaptive = _served(classifier)
    out: list[float | None] = [None] * len(rows)
    groups_out: list[tuple[list[int], list[float]]] = []
    snapshot = LinearSnapshot.of(model)
    if snapshot is None:
        return out, [], groups_out
    # What DriftAdaptiveClassifier._complete appends: the other classes it has seen, at 0 (dict-key
    # equality: 1 and 0 are True and False already).
    binary: dict[ClassLabel, float] = {False: 0.0, True: 0.0}
    extra = [label for label in adaptive._classes if label not in binary] if adaptive is not None else []
    for keys, indices in _numeric_groups(rows).items():
        if snapshot.one_hot and not snapshot.one_hot.isdisjoint(keys):
            continue
        values = itertools.chain.from_iterable([rows[i].values() for i in indices])
        matrix = np.fromiter(values, dtype=float, count=len(indices) * len(keys))
        positive = snapshot.positive_proba(keys, matrix.reshape(len(indices), len(keys)))
        if positive is None:
            continue
        for i, p in zip(indices, positive, strict=True):
            out[i] = p
        groups_out.append((indices, positive))
    return out, extra, groups_out


def _numeric_groups(rows: Sequence[Features]) -> dict[tuple[str, ...], list[int]]:
    """The rows whose values are all numbers, grouped by their features in order (each group shares a
    matrix); in two C-level passes when every row is numeric with the same features (the usual run).

    >>> _numeric_groups([{"a": 1.0, "b": 2}, {"b": 1.0, "a": 2.0}, {"a": "s", "b": 1.0}, {"a": 0.5, "b": 1}])
    {('a', 'b'): [0, 3], ('b', 'a'): [1]}
    """
    if NUMBER_TYPES.issuperset(map(type, itertools.chain.from_iterable([x.values() for x in rows]))):
        shapes = set(map(tuple, rows))
        if len(shapes) == 1:
            return {shapes.pop(): list(range(len(rows)))}
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, x in enumerate(rows):
        if NUMBER_TYPES.issuperset(map(type, x.values())):
            groups.setdefault(tuple(x), []).append(i)
    return groups


def _vector_probas(
    classifier: base.Classifier, rows: Sequence[Features]
) -> tuple[list[dict | None], list[tuple[list[int], np.ndarray]]]:
    """Probabilities of the rows the vectorised path covers (``None`` for the others), and for each group
    of rows the matrix of those probabilities (columns in the dicts' order)."""
    positive, extra, groups = _vector_positive(classifier, rows)
    out: list[dict | None]
    if not extra and None not in positive:  # the usual run: binary, every row on the matrix
        out = [{False: 1.0 - p, True: p} for p in positive]  # type: ignore[operator]
    else:
        out = [None] * len(rows)
        for i, p in enumerate(positive):
            if p is not None:
                proba = {False: 1.0 - p, True: p}
                for label in extra:
                    proba[label] = 0.0
                out[i] = proba
    matrices: list[tuple[list[int], np.ndarray]] = []
    for indices, group in groups:
        p_true = np.array(group, dtype=float)
        columns = [1.0 - p_true, p_true, *(np.zeros(len(indices)) for _ in extra)]
        matrices.append((indices, np.column_stack(columns)))
    return out, matrices


def score_batch(learner: ActiveLearner, rows: Sequence[Features]) -> list[Scored | Exception]:
    """Each row's probabilities and score, as ``learner.decide`` computes them, without deciding.

    A row the model or the measure cannot take gives the exception it raised (as ``decide`` would have),
    and the measure is not called for it. The measure is called in row order, so seeded or stateful
    measures draw and remember exactly as event by event.
    """
    classifier, measure = learner.classifier, learner.informativeness
    vectorised, matrices = _vector_probas(classifier, rows)
    if type(measure) in _VECTORISED_MEASURES and len(matrices) == 1 and len(matrices[0][0]) == len(rows):
        # The usual run: one matrix holds every row, in order.
        return list(map(Scored, vectorised, measure.score_many(matrices[0][1]).tolist()))  # type: ignore[arg-type]
    probas: list[dict | Exception] = []
    for x, proba in zip(rows, vectorised, strict=True):
        if proba is None:
            try:
                proba = dict(classifier.predict_proba_one(x))
            except Exception as error:
                proba = error
        probas.append(proba)
    scores: list[float | Exception | None] = [None] * len(rows)
    if type(measure) in _VECTORISED_MEASURES:
        for indices, matrix in matrices:
            for i, score in zip(indices, measure.score_many(matrix).tolist(), strict=True):
                scores[i] = score
        rest = [p if s is None else None for p, s in zip(probas, scores, strict=True)]
        _score_vectorised(measure, rest, scores)
    for i, proba in enumerate(probas):
        if isinstance(proba, Exception):
            scores[i] = proba
        elif scores[i] is None:
            try:
                scores[i] = measure.score(rows[i], proba, classifier)
            except Exception as error:
                scores[i] = error
    return [
        score if isinstance(score, Exception) else Scored(proba, score)  # type: ignore[arg-type]
        for proba, score in zip(probas, scores, strict=True)
    ]


def predict_many(classifier: base.Classifier, rows: Sequence[Features]) -> list[ClassLabel | None]:
    """``classifier.predict_one`` of each row, the probabilities computed on a matrix where they can be
    (river's argmax: the first class of the highest probability, in the probabilities' order).

    >>> from river import datasets
    >>> from activestream.models import make_model
    >>> stream = list(datasets.synth.SEA(seed=1).take(200))
    >>> model = make_model("logreg")
    >>> for x, y in stream[:100]:
    ...     model.learn_one(x, y)
    >>> rows = [x for x, _ in stream[100:]]
    >>> predict_many(model, rows) == [model.predict_one(x) for x in rows]
    True
    """
    # The argmax of ``{False: 1 - p, True: p, <extra classes>: 0}``, first class first, without the dict:
    # ``True`` only when ``p > 1 - p`` (an extra class at 0 never wins: 1 - p or p is at least 0.5).
    positive, _, _ = _vector_positive(classifier, rows)
    return [
        classifier.predict_one(x) if p is None else p > 1.0 - p for x, p in zip(rows, positive, strict=True)
    ]


def _score_vectorised(measure: Any, probas: Sequence[Any], scores: list[Any]) -> None:
    """Fill ``scores`` for the rows whose probabilities share one class order (usually all of them)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, proba in enumerate(probas):
        if isinstance(proba, dict):
            groups.setdefault(tuple(proba), []).append(i)
    for classes, indices in groups.items():
        try:
            matrix = np.array([list(probas[i].values()) for i in indices], dtype=float)
        except (TypeError, ValueError):
            continue  # values numpy cannot take as floats: the per-event measure repairs them
        matrix = matrix.reshape(len(indices), len(classes))
        for i, score in zip(indices, measure.score_many(matrix).tolist(), strict=True):
            scores[i] = score


def decide_batch(
    learner: ActiveLearner,
    rows: Sequence[Features],
    after_each: Callable[[float], object] | None = None,
    *,
    after_run: Callable[[float], object] | None = None,
    verdicts_for_discards: bool = False,
) -> list[Decision | Verdict | Exception]:
    """``learner.decide`` of each row in turn, with the scoring done for the whole batch.

    ``after_each(score)`` runs after each decision, before the next one (e.g. the drift watch's
    label-free signal, when an alarm may boost the policy); without it the policy decides the whole run at
    once (``Policy.decide_many``), and ``after_run(score)`` then runs for each decided score, in order (one
    hook or the other: both would observe each score twice). A row that cannot be scored gives its
    exception and does not reach the policy, as with ``decide``. With ``verdicts_for_discards`` a discard
    gives the policy's ``Verdict`` (its ask, threshold and reason) instead of a ``Decision``, whose
    prediction and probabilities a caller that audits no discard never reads: most events, spared two
    objects each.
    """
    if after_each is not None and after_run is not None:
        raise ValueError("decide_batch takes after_each or after_run, not both")
    policy, strategy = learner.threshold_policy, learner.strategy
    trained = learner.trained  # a run holds no label: the model learns between runs
    scored_rows = score_batch(learner, rows)
    scores = [s.score for s in scored_rows if not isinstance(s, Exception)]
    decided = policy.decide_many(scores) if after_each is None else _decide_each(policy, scores, after_each)
    verdicts = iter(decided)
    decisions: list[Decision | Verdict | Exception] = []
    for scored in scored_rows:
        if isinstance(scored, Exception):
            decisions.append(scored)
            continue
        verdict = next(verdicts)
        if isinstance(verdict, Exception) or (verdicts_for_discards and not verdict.ask):
            decisions.append(verdict)
            continue
        y_pred, proba = learner.present(scored.proba)
        decisions.append(
            Decision(
                y_pred,
                proba,
                scored.score,
                verdict.threshold,
                verdict.ask,
                strategy,
                verdict.reason,
                verdict.ask_proba,
                trained,
            )
        )
    if after_run is not None:
        for score, verdict in zip(scores, decided, strict=True):
            if not isinstance(verdict, Exception):
                after_run(score)
    return decisions


def _decide_each(
    policy: Policy, scores: Sequence[float], after_each: Callable[[float], object]
) -> list[Verdict | Exception]:
    """The policy's verdict on each score, ``after_each(score)`` after each verdict and before the next."""
    verdicts: list[Verdict | Exception] = []
    for score in scores:
        verdicts += policy.decide_many((score,))
        if not isinstance(verdicts[-1], Exception):
            after_each(score)
    return verdicts


def scores_only(learner: ActiveLearner, rows: Sequence[Features]) -> list[Decision | Exception]:
    """Batch (annotators') selection mode: each row scored, no ask decision yet (the window decides)."""
    strategy = f"{learner.strategy.partition('/')[0]}/batch"
    trained = learner.trained
    return [
        s
        if isinstance(s, Exception)
        else Decision(
            *learner.present(s.proba), s.score, float("nan"), False, strategy, BELOW_THRESHOLD, None, trained
        )
        for s in score_batch(learner, rows)
    ]
