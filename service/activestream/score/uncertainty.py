"""Uncertainty sampling: ask for labels where the model is least sure of its prediction.

The three classic measures (Settles 2009, *Active Learning Literature Survey*, §3.1) read only the
model's class probabilities. Each is rescaled so that a uniform distribution scores ``1.0`` and a
one-hot distribution scores ``0.0``, whatever the number of classes ``C = len(proba)``.

River models may return probabilities that do not sum to one, or are empty before the first label:
``normalise`` repairs the former, and the cold start (fewer than two classes, or no positive mass)
scores ``1.0`` so that an untrained model still gets labels.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from activestream.score.base import Measure
from activestream.types import ClassLabel, Features, Proba

__all__ = [
    "Entropy",
    "LeastConfidence",
    "Margin",
    "RandomScore",
    "distributions",
    "entropy",
    "entropy_many",
    "is_cold_start",
    "least_confidence",
    "least_confidence_many",
    "margin",
    "margin_many",
    "normalise",
    "shannon",
]


def normalise(proba: Proba) -> dict[ClassLabel, float]:
    """Class probabilities repaired into a distribution that sums to one.

    Negative, NaN and infinite values count as ``0``. Values are divided by their maximum before
    summing, so that huge scores cannot overflow the sum. Returns ``{}`` when no value is positive.

    Parameters
    ----------
    proba
        Class probabilities (or unnormalised scores), as returned by ``predict_proba_one``.

    Examples
    --------
    >>> normalise({"a": 2.0, "b": 6.0, "c": -1.0})
    {'a': 0.25, 'b': 0.75, 'c': 0.0}
    >>> normalise({"a": 0.0, "b": float("nan")})
    {}

    """
    clean = {k: float(v) if _is_positive(v) else 0.0 for k, v in proba.items()}
    peak = max(clean.values(), default=0.0)
    if peak <= 0.0:
        return {}
    scaled = {k: v / peak for k, v in clean.items()}
    total = math.fsum(scaled.values())
    return {k: v / total for k, v in scaled.items()}


def _is_positive(value: Any) -> bool:
    # Rejects NaN (every comparison is False) and +inf, which cannot be divided into a distribution.
    try:
        return 0.0 < float(value) < math.inf
    except (TypeError, ValueError):
        return False


def is_cold_start(proba: Proba) -> bool:
    """Whether ``proba`` carries no usable opinion: fewer than two classes, or no positive mass.

    Parameters
    ----------
    proba
        Class probabilities from the served model.

    Examples
    --------
    >>> is_cold_start({}), is_cold_start({"a": 1.0}), is_cold_start({"a": 0.0, "b": 0.0})
    (True, True, True)
    >>> is_cold_start({"a": 1.0, "b": 0.0})
    False

    """
    return len(proba) < 2 or not normalise(proba)


def _distribution(proba: Proba) -> list[float] | None:
    """The repaired probabilities, or ``None`` on a cold start (the three measures then give ``1.0``)."""
    p = normalise(proba)
    return list(p.values()) if len(proba) >= 2 and p else None


def least_confidence(proba: Proba) -> float:
    r"""Normalised least confidence: one minus the probability of the predicted class.

    $$\operatorname{LC}(p) = \frac{C}{C - 1}\left(1 - \max_y p_y\right)$$

    The factor $C / (C - 1)$ maps the largest possible value, reached by the uniform distribution
    ($\max_y p_y = 1/C$), to ``1``. Source: Culotta & McCallum (2005), *Reducing labeling effort for
    structured prediction tasks*, AAAI.

    Parameters
    ----------
    proba
        Class probabilities; repaired with ``normalise``. Cold start gives ``1.0``.

    Examples
    --------
    >>> round(least_confidence({"a": 0.9, "b": 0.09, "c": 0.01}), 4)
    0.15
    >>> least_confidence({"a": 0.5, "b": 0.5}), least_confidence({})
    (1.0, 1.0)

    """
    p = _distribution(proba)
    if p is None:
        return 1.0
    return _clip(len(p) / (len(p) - 1) * (1.0 - max(p)))


def margin(proba: Proba) -> float:
    r"""Margin score: one minus the gap between the two most probable classes.

    $$\operatorname{M}(p) = 1 - \left(p_{(1)} - p_{(2)}\right)$$

    where $p_{(1)} \ge p_{(2)}$ are the two largest probabilities. A small margin means the model
    hesitates between two labels. Source: Scheffer, Decomain & Wrobel (2001), *Active hidden Markov
    models for information extraction*, IDA.

    Parameters
    ----------
    proba
        Class probabilities; repaired with ``normalise``. Cold start gives ``1.0``.

    Examples
    --------
    >>> round(margin({"a": 0.4, "b": 0.3, "c": 0.3}), 4)
    0.9
    >>> margin({"a": 1.0, "b": 0.0})
    0.0

    """
    p = _distribution(proba)
    if p is None:
        return 1.0
    first, second = sorted(p, reverse=True)[:2]
    return _clip(1.0 - (first - second))


def entropy(proba: Proba) -> float:
    r"""Normalised Shannon entropy of the class distribution.

    $$\operatorname{H}(p) = -\frac{1}{\log C} \sum_y p_y \log p_y$$

    Dividing by $\log C$, the entropy of the uniform distribution, maps the result to ``[0, 1]``.
    Source: Settles & Craven (2008), *An analysis of active learning strategies for sequence labeling
    tasks*, EMNLP; after Shannon (1948).

    Parameters
    ----------
    proba
        Class probabilities; repaired with ``normalise``. Cold start gives ``1.0``.

    Examples
    --------
    >>> round(entropy({"a": 0.9, "b": 0.09, "c": 0.01}), 4)
    0.3255
    >>> entropy({"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25})
    1.0

    """
    p = _distribution(proba)
    if p is None:
        return 1.0
    return _clip(shannon(p) / math.log(len(p)))


def shannon(distribution: Any) -> float:
    r"""Shannon entropy $-\sum_i p_i \log p_i$ in nats of an iterable of probabilities (``0 log 0 = 0``).

    Examples
    --------
    >>> round(shannon([0.5, 0.5]), 6)
    0.693147

    """
    return -math.fsum(q * math.log(q) for q in distribution if q > 0.0)


def _clip(value: float) -> float:
    # Rounding can push a normalised score a hair outside [0, 1]; the contract promises the interval.
    return min(1.0, max(0.0, value))


# -- the same measures over a matrix of probabilities (a batch of events) -------------------------------
# Bit for bit the per-event functions: the same IEEE operations on each value (numpy's elementwise
# arithmetic rounds as Python's does), exact sums (``math.fsum`` for more than two classes; one
# addition is exact for two) and ``math.log``, whose last bit numpy's vectorised log need not share. The
# decisions of a batch must not differ from the event-by-event path because of the last bit of a score.


def distributions(probas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of an ``(n, C)`` matrix repaired as ``normalise`` does, and which rows are cold starts.

    Cold rows (``is_cold_start``: ``C < 2`` or no positive value) come back as zeros.

    >>> p, cold = distributions(np.array([[2.0, 6.0], [0.0, np.nan]]))
    >>> p[0].tolist(), cold.tolist()
    ([0.25, 0.75], [False, True])
    """
    n, n_classes = probas.shape
    if n_classes < 2:
        return np.zeros_like(probas, dtype=float), np.ones(n, dtype=bool)
    with np.errstate(invalid="ignore"):  # NaN compares False, quietly
        clean = np.where((probas > 0.0) & (probas < math.inf), probas, 0.0)
    peak = clean.max(axis=1)
    cold = peak <= 0.0
    scaled = clean / np.where(cold, 1.0, peak)[:, None]
    if n_classes == 2:
        total = scaled[:, 0] + scaled[:, 1]
    else:
        total = np.fromiter(map(math.fsum, scaled.tolist()), dtype=float, count=n)
    return np.where(cold[:, None], 0.0, scaled / np.where(cold, 1.0, total)[:, None]), cold


def _clip_many(values: np.ndarray, cold: np.ndarray) -> np.ndarray:
    return np.where(cold, 1.0, np.minimum(1.0, np.maximum(0.0, values)))


def least_confidence_many(probas: np.ndarray) -> np.ndarray:
    """``least_confidence`` of each row of an ``(n, C)`` matrix of class probabilities.

    >>> least_confidence_many(np.array([[0.8, 0.2], [0.5, 0.5]])).round(6).tolist()
    [0.4, 1.0]
    """
    p, cold = distributions(probas)
    n_classes = probas.shape[1]
    if n_classes < 2:
        return np.ones(len(probas))
    return _clip_many(n_classes / (n_classes - 1) * (1.0 - p.max(axis=1)), cold)


def margin_many(probas: np.ndarray) -> np.ndarray:
    """``margin`` of each row of an ``(n, C)`` matrix of class probabilities.

    >>> margin_many(np.array([[0.4, 0.3, 0.3]])).round(6).tolist()
    [0.9]
    """
    p, cold = distributions(probas)
    if probas.shape[1] < 2:
        return np.ones(len(probas))
    top = np.sort(p, axis=1)
    return _clip_many(1.0 - (top[:, -1] - top[:, -2]), cold)


def entropy_many(probas: np.ndarray) -> np.ndarray:
    """``entropy`` of each row of an ``(n, C)`` matrix of class probabilities.

    >>> entropy_many(np.array([[0.25, 0.25, 0.25, 0.25]])).tolist()
    [1.0]
    """
    p, cold = distributions(probas)
    n, n_classes = probas.shape
    if n_classes < 2:
        return np.ones(n)
    rows = np.where(cold[:, None], 0.0, p).tolist()
    terms = [[q * math.log(q) if q > 0.0 else 0.0 for q in row] for row in rows]
    if n_classes == 2:
        neg = np.array(terms).reshape(n, 2)
        sums = neg[:, 0] + neg[:, 1]
    else:
        sums = np.fromiter(map(math.fsum, terms), dtype=float, count=n)
    return _clip_many(-sums / math.log(n_classes), cold)


class _ProbaMeasure(Measure):
    """A measure that reads only the served model's class probabilities."""


class _UncertaintyMeasure(_ProbaMeasure):
    """One of the three classic uncertainty measures: a function of the class probabilities alone."""

    #: The measure as a function of ``proba``, and its vectorised twin over a matrix of probabilities.
    function: ClassVar[Callable[[Proba], float]]
    function_many: ClassVar[Callable[[np.ndarray], np.ndarray]]

    def score(self, x: Features, proba: Proba, model: Any = None) -> float:
        """The measure of ``proba``; ``x`` and ``model`` are not used."""
        return type(self).function(proba)

    def score_many(self, probas: np.ndarray) -> np.ndarray:
        """``score`` of each row of an ``(n, C)`` matrix of class probabilities (see ``distributions``)."""
        return type(self).function_many(probas)


class LeastConfidence(_UncertaintyMeasure):
    """Least-confidence uncertainty sampling, normalised to ``[0, 1]``; see ``least_confidence``.

    >>> LeastConfidence().score({"x": 1.0}, {"a": 0.8, "b": 0.2})
    0.4
    """

    name: ClassVar[str] = "least_confidence"
    function = staticmethod(least_confidence)
    function_many = staticmethod(least_confidence_many)


class Margin(_UncertaintyMeasure):
    """Margin uncertainty sampling, ``1 - (p_(1) - p_(2))``; see ``margin``.

    >>> Margin().score({"x": 1.0}, {"a": 0.8, "b": 0.2})
    0.4
    """

    name: ClassVar[str] = "margin"
    function = staticmethod(margin)
    function_many = staticmethod(margin_many)


class Entropy(_UncertaintyMeasure):
    """Entropy uncertainty sampling, normalised by ``log C``; see ``entropy``.

    >>> round(Entropy().score({"x": 1.0}, {"a": 0.8, "b": 0.2}), 4)
    0.7219
    """

    name: ClassVar[str] = "entropy"
    function = staticmethod(entropy)
    function_many = staticmethod(entropy_many)


class RandomScore(_ProbaMeasure):
    """A seeded uniform score in ``[0, 1)``: the random-sampling baseline.

    Ignores the event; with a fixed threshold policy it asks for a fixed fraction of labels at
    random, the baseline every active learning strategy must beat (Žliobaitė et al. 2014, *Active
    learning with drifting streaming data*, IEEE TNNLS). The cold start still gives ``1.0`` and draws
    no number.

    Parameters
    ----------
    seed
        Seed of the private random generator; ``None`` seeds from the operating system.

    Examples
    --------
    >>> a, b = RandomScore(seed=42), RandomScore(seed=42)
    >>> [a.score({}, {"x": 0.5, "y": 0.5}) for _ in range(3)] == [
    ...     b.score({}, {"x": 0.5, "y": 0.5}) for _ in range(3)]
    True
    >>> a.score({}, {})
    1.0

    """

    name: ClassVar[str] = "random"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def score(self, x: Features, proba: Proba, model: Any = None) -> float:
        """A fresh uniform draw in ``[0, 1)``, or ``1.0`` on cold start."""
        if self.is_cold(x, proba):
            return 1.0
        return self._rng.random()
