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
from typing import Any, ClassVar

from activestream.score.base import Measure
from activestream.types import ClassLabel, Features, Proba

__all__ = [
    "Entropy",
    "LeastConfidence",
    "Margin",
    "RandomScore",
    "entropy",
    "is_cold_start",
    "least_confidence",
    "margin",
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
    p = normalise(proba)
    if len(proba) < 2 or not p:
        return 1.0
    n_classes = len(p)
    return _clip(n_classes / (n_classes - 1) * (1.0 - max(p.values())))


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
    p = normalise(proba)
    if len(proba) < 2 or not p:
        return 1.0
    first, second = sorted(p.values(), reverse=True)[:2]
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
    p = normalise(proba)
    if len(proba) < 2 or not p:
        return 1.0
    return _clip(shannon(p.values()) / math.log(len(p)))


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


class _ProbaMeasure(Measure):
    """A measure that reads only the served model's class probabilities."""


class LeastConfidence(_ProbaMeasure):
    """Least-confidence uncertainty sampling, normalised to ``[0, 1]``; see ``least_confidence``.

    Examples
    --------
    >>> LeastConfidence().score({"x": 1.0}, {"a": 0.8, "b": 0.2})
    0.4

    """

    name: ClassVar[str] = "least_confidence"

    def score(self, x: Features, proba: Proba, model: Any = None) -> float:
        """Normalised least confidence of ``proba``; ``x`` and ``model`` are not used."""
        return least_confidence(proba)


class Margin(_ProbaMeasure):
    """Margin uncertainty sampling, ``1 - (p_(1) - p_(2))``; see ``margin``.

    Examples
    --------
    >>> Margin().score({"x": 1.0}, {"a": 0.8, "b": 0.2})
    0.4

    """

    name: ClassVar[str] = "margin"

    def score(self, x: Features, proba: Proba, model: Any = None) -> float:
        """Margin score of ``proba``; ``x`` and ``model`` are not used."""
        return margin(proba)


class Entropy(_ProbaMeasure):
    """Entropy uncertainty sampling, normalised by ``log C``; see ``entropy``.

    Examples
    --------
    >>> round(Entropy().score({"x": 1.0}, {"a": 0.8, "b": 0.2}), 4)
    0.7219

    """

    name: ClassVar[str] = "entropy"

    def score(self, x: Features, proba: Proba, model: Any = None) -> float:
        """Normalised entropy of ``proba``; ``x`` and ``model`` are not used."""
        return entropy(proba)


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
