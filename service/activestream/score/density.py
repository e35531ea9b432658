"""Information density: weight an informativeness score by how typical the event is.

Uncertainty sampling alone chases outliers: an event unlike anything else in the stream can be very
uncertain, yet its label teaches the model little about the events it will actually see. Information
density (Settles & Craven 2008, *An analysis of active learning strategies for sequence labeling
tasks*, EMNLP) multiplies the score by the event's average similarity to the input distribution, here
estimated from a bounded memory of recent unlabeled events.
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from typing import Any, ClassVar

from activestream.score.base import Measure
from activestream.score.uncertainty import Entropy
from activestream.types import ClassLabel, Features, Proba

__all__ = ["DensityWeighted", "squared_distance"]


def squared_distance(a: Features, b: Features) -> float:
    """Squared distance between two events with numeric and categorical features.

    Numeric features (``int``, ``float``, ``bool``) add their squared difference; a numeric feature
    absent from one event counts as ``0``, river's convention for sparse inputs. Categorical features
    (any other value, e.g. ``str``) add ``1`` when the values differ or one is absent and ``0`` when
    equal: the Hamming distance, i.e. half the squared distance between one-hot encodings, so a
    category mismatch weighs as much as a unit numeric difference. A NaN difference adds nothing
    (unknown is neither near nor far).

    Parameters
    ----------
    a, b
        The two events.

    Examples
    --------
    >>> squared_distance({"x": 1.0, "y": 2.0}, {"x": 4.0, "y": 6.0})
    25.0
    >>> squared_distance({"x": 1.0, "colour": "red"}, {"colour": "blue"})
    2.0

    """
    total = 0.0
    for key in a.keys() | b.keys():
        total += _feature_distance(a.get(key), b.get(key))
    return total


def _feature_distance(u: Any, v: Any) -> float:
    # ``None`` marks a feature absent from one event; the caller never passes two.
    if _is_number_or_absent(u) and _is_number_or_absent(v):
        diff = float(u or 0.0) - float(v or 0.0)
        return 0.0 if math.isnan(diff) else diff * diff
    return 0.0 if u == v else 1.0


def _is_number_or_absent(value: Any) -> bool:
    # numbers.Real also covers bool and numpy scalars.
    return value is None or isinstance(value, numbers.Real)


class DensityWeighted(Measure):
    r"""An inner measure weighted by the event's density among recent events.

    $$\phi_{\text{ID}}(x) = \phi(x) \cdot \left(\frac{1}{|U|} \sum_{x' \in U} \operatorname{sim}(x, x')
    \right)^{\beta}, \quad \operatorname{sim}(x, x') = \exp\left(-\frac{\lVert x - x' \rVert^2}
    {2 h^2}\right)$$

    where $\phi$ is the inner measure, $U$ the last ``memory`` events scored (labeled or not) and $h$
    the ``bandwidth``; distances follow ``squared_distance``. Source: Settles & Craven (2008), *An
    analysis of active learning strategies for sequence labeling tasks*, EMNLP (information density),
    with a Gaussian kernel in place of their cosine similarity so that dense numeric streams work.

    ``score`` adds ``x`` to the memory after scoring it; the first event (empty memory) has density
    ``1``. The inner measure's cold start overrides the density and gives ``1.0``: an untrained model
    must get labels even for atypical events. ``learn_one`` is forwarded to the inner measure.

    Parameters
    ----------
    inner
        The measure to weight (default ``Entropy()``).
    beta
        Exponent of the density: ``0`` gives the inner measure unchanged, larger values favour typical
        events more.
    bandwidth
        Kernel width $h$, in the units of the (ideally standardised) features.
    memory
        Number of recent events kept to estimate the density.

    Examples
    --------
    >>> measure = DensityWeighted(beta=1.0, bandwidth=1.0, memory=3)
    >>> proba = {"a": 0.5, "b": 0.5}
    >>> measure.score({"x": 0.0}, proba)  # empty memory: density 1
    1.0
    >>> round(measure.score({"x": 0.1}, proba), 4)  # close to the first event
    0.995
    >>> round(measure.score({"x": 5.0}, proba), 4)  # an outlier
    0.0
    >>> measure.score({"x": 5.0}, {})  # cold start overrides the density
    1.0

    """

    name: ClassVar[str] = "density"

    def __init__(
        self, inner: Measure | None = None, *, beta: float = 1.0, bandwidth: float = 1.0, memory: int = 200
    ) -> None:
        if beta < 0.0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if bandwidth <= 0.0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
        if memory < 1:
            raise ValueError(f"memory must be >= 1, got {memory}")
        self.inner = Entropy() if inner is None else inner
        self.beta = beta
        self.bandwidth = bandwidth
        self.memory = memory
        self.recent: deque[Features] = deque(maxlen=memory)

    def similarity(self, x: Features) -> float:
        """Mean kernel similarity of ``x`` to the remembered events; ``1.0`` when the memory is empty.

        Examples
        --------
        >>> measure = DensityWeighted()
        >>> measure.recent.extend([{"x": 0.0}, {"x": 2.0}])
        >>> round(measure.similarity({"x": 0.0}), 4)
        0.5677

        """
        if not self.recent:
            return 1.0
        scale = 2.0 * self.bandwidth * self.bandwidth
        return math.fsum(math.exp(-squared_distance(x, seen) / scale) for seen in self.recent) / len(
            self.recent
        )

    def is_cold(self, x: Features, proba: Proba) -> bool:
        """The inner measure's cold start."""
        return self.inner.is_cold(x, proba)

    def score(self, x: Features, proba: Proba, model: Any = None) -> float:
        """Inner score times density to the power ``beta``, then remember ``x``; ``1.0`` on cold start."""
        cold = self.is_cold(x, proba)
        # The inner measure is always called, so that its own state (a seeded draw, a nested memory)
        # advances the same way whatever the outcome.
        inner = self.inner.score(x, proba, model)
        density = self.similarity(x)
        self.recent.append(dict(x))
        if cold:
            return 1.0
        return min(1.0, max(0.0, inner * density**self.beta))

    def learn_one(self, x: Features, y: ClassLabel) -> None:
        """Forward the labeled example to the inner measure."""
        self.inner.learn_one(x, y)
