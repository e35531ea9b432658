"""Measures by name, so that configuration can pick one with a string."""

from __future__ import annotations

from typing import Any

from activestream.score.base import Measure
from activestream.score.committee import KLConsensus, VoteEntropy
from activestream.score.density import DensityWeighted
from activestream.score.model_change import ExpectedModelChange
from activestream.score.uncertainty import Entropy, LeastConfidence, Margin, RandomScore

__all__ = ["MEASURES", "make_measure"]

#: Every measure class by its ``name``.
MEASURES: dict[str, type[Measure]] = {
    cls.name: cls
    for cls in (
        LeastConfidence,
        Margin,
        Entropy,
        RandomScore,
        VoteEntropy,
        KLConsensus,
        DensityWeighted,
        ExpectedModelChange,
    )
}

# Measures whose constructor takes the seed; the others are deterministic without one.
_SEEDED = frozenset({RandomScore.name, VoteEntropy.name, KLConsensus.name})


def make_measure(name: str, *, seed: int | None = None, **params: Any) -> Measure:
    """Build the measure registered under ``name``.

    Parameters
    ----------
    name
        One of ``MEASURES``.
    seed
        Seed for the measures that draw random numbers (``random``, the committees' bagging); passed on
        to the inner measure of ``density``.
    params
        Constructor parameters. ``density`` takes ``inner`` (a measure name, default ``"entropy"``, or a
        ``Measure``), ``inner_params`` (a dict for the inner measure), ``beta``, ``bandwidth`` and
        ``memory``. ``qbc_vote_entropy`` and ``qbc_kl`` take ``base`` (a river classifier, default
        ``river.naive_bayes.GaussianNB()``) and ``size`` (default ``5``). Unknown parameters raise
        ``TypeError``.

    Raises
    ------
    ValueError
        If ``name`` is not a registered measure.

    Examples
    --------
    >>> make_measure("density", inner="margin", beta=2.0).inner.name
    'margin'
    >>> make_measure("qbc_kl", seed=7, size=3).committee.seed
    7
    >>> make_measure("uncertainty")
    Traceback (most recent call last):
    ...
    ValueError: unknown measure 'uncertainty'; valid names: density, entropy, ...

    """
    if name not in MEASURES:
        raise ValueError(f"unknown measure {name!r}; valid names: {', '.join(sorted(MEASURES))}")
    if name == DensityWeighted.name:
        return _make_density(seed=seed, **params)
    if name in _SEEDED:
        params["seed"] = seed
    return MEASURES[name](**params)


def _make_density(
    *,
    seed: int | None,
    inner: str | Measure = "entropy",
    inner_params: dict[str, Any] | None = None,
    **params: Any,
) -> DensityWeighted:
    if isinstance(inner, str):
        if inner == DensityWeighted.name:
            # Nested density would weight twice by the same memory: almost surely a configuration slip.
            raise ValueError("the inner measure of 'density' cannot be 'density'")
        inner = make_measure(inner, seed=seed, **(inner_params or {}))
    return DensityWeighted(inner, **params)
