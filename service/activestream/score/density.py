"""Information density: weight an informativeness score by how typical the event is.

Uncertainty sampling alone chases outliers: an event unlike anything else in the stream can be very
uncertain, yet its label teaches the model little about the events it will actually see. Information
density (Settles & Craven 2008, *An analysis of active learning strategies for sequence labeling
tasks*, EMNLP) multiplies the score by the event's average similarity to the input distribution, here
estimated from a bounded memory of recent unlabeled events.

Comparing each event with every remembered one dominates the cost, so the common case runs on a matrix:
while every remembered event and the new one have the same numeric features, their distances are one
numpy expression (rows of a ring buffer beside the memory). Any other event — a category, a missing or
extra feature — takes the general per-feature path until it has left the memory. The kernel sum is
``math.fsum`` on both paths, so they differ only in the rounding of each squared distance.
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

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
        self._empty_memory()

    @property
    def recent(self) -> tuple[Features, ...]:
        """The remembered events, oldest first (copies; add with ``remember``)."""
        return tuple(self._recent)

    def remember(self, x: Features) -> None:
        """Add a copy of ``x`` to the memory (``score`` does it after scoring), forgetting the oldest."""
        self._remember(x, self._row(x))

    # -- the matrix beside the memory --------------------------------------------------------------------
    # Invariant: with no irregular event remembered, the matrix's first ``len(self._recent)`` rows are
    # exactly the memory (a reset only happens once no regular event is left in it).
    def _empty_memory(self) -> None:
        self._recent: deque[Features] = deque(maxlen=self.memory)
        self._regular: deque[bool] = deque(maxlen=self.memory)  # per remembered event: in the matrix?
        self._irregular = 0  # remembered events not in the matrix
        self._reset_matrix(())

    def _reset_matrix(self, columns: tuple[str, ...]) -> None:
        self._columns = columns
        self._matrix = np.empty((self.memory, len(columns)))
        self._next = 0  # the ring buffer's next row

    def _row(self, x: Mapping[str, Any]) -> np.ndarray | None:
        """``x``'s values in the matrix's column order when ``x`` has exactly its features, all numeric."""
        if len(x) != len(self._columns) or not all(isinstance(v, numbers.Real) for v in x.values()):
            return None
        try:
            return np.fromiter((float(x[k]) for k in self._columns), float, len(self._columns))
        except (KeyError, OverflowError):  # another feature, or an int beyond float: the general path
            return None

    def _remember(self, x: Features, row: np.ndarray | None) -> None:
        if len(self._recent) == self.memory:
            self._irregular -= not self._regular[0]
        self._recent.append(dict(x))
        if row is None and self._irregular == len(self._recent) - 1:
            # No event left in the matrix: this one gives it its columns (and its first row, if numeric).
            self._reset_matrix(tuple(x))
            row = self._row(x)
        self._regular.append(row is not None)
        if row is None:
            self._irregular += 1
            return
        self._matrix[self._next] = row
        self._next = (self._next + 1) % self.memory

    def _matrix_similarity(self, row: np.ndarray | None) -> float | None:
        """The mean similarity of ``row`` on the matrix, or ``None`` when the general path must answer."""
        if row is None or self._irregular:
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            diff = self._matrix[: len(self._recent)] - row
            squared = diff * diff
            squared[np.isnan(squared)] = 0.0  # as ``squared_distance``: unknown is neither near nor far
            kernels = np.exp(-squared.sum(axis=1) / (2.0 * self.bandwidth * self.bandwidth))
        return math.fsum(kernels.tolist()) / len(self._recent)

    def __getstate__(self) -> dict[str, Any]:
        # The matrix is derived from the memory: checkpoints keep the memory only.
        state = {k: v for k, v in self.__dict__.items() if k not in _DERIVED}
        state["recent"] = state.pop("_recent")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        remembered = state.pop("recent")
        self.__dict__.update(state)
        self._empty_memory()
        for x in remembered:
            self.remember(x)

    def similarity(self, x: Features) -> float:
        """Mean kernel similarity of ``x`` to the remembered events; ``1.0`` when the memory is empty.

        Examples
        --------
        >>> measure = DensityWeighted()
        >>> measure.remember({"x": 0.0})
        >>> measure.remember({"x": 2.0})
        >>> round(measure.similarity({"x": 0.0}), 4)
        0.5677
        >>> measure.remember({"x": 1.0, "colour": "red"})  # not numeric only: the general path
        >>> round(measure.similarity({"x": 0.0}), 4)
        0.5011

        """
        return self._similarity(x, self._row(x))

    def _similarity(self, x: Features, row: np.ndarray | None) -> float:
        if not self._recent:
            return 1.0
        on_matrix = self._matrix_similarity(row)
        if on_matrix is not None:
            return on_matrix
        scale = 2.0 * self.bandwidth * self.bandwidth
        return math.fsum(math.exp(-squared_distance(x, seen) / scale) for seen in self._recent) / len(
            self._recent
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
        row = self._row(x)  # once, for both the similarity and the memory
        density = self._similarity(x, row)
        self._remember(x, row)
        if cold:
            return 1.0
        return min(1.0, max(0.0, inner * density**self.beta))

    def learn_one(self, x: Features, y: ClassLabel) -> None:
        """Forward the labeled example to the inner measure."""
        self.inner.learn_one(x, y)


#: Attributes rebuilt from the memory on unpickling.
_DERIVED = frozenset({"_columns", "_matrix", "_regular", "_irregular", "_next"})
