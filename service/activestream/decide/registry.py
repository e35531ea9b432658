"""Policies by name, as configuration and checkpoints refer to them."""

from __future__ import annotations

from typing import Any, Final

from activestream.decide.base import Policy
from activestream.decide.confidence_split import ConfidenceSplit
from activestream.decide.policies import (
    BalancedIncrementalQuantileFilter,
    FixedThreshold,
    RandomizedVariableUncertainty,
    SelectiveSampling,
    Split,
    VariableUncertainty,
)

__all__ = ["POLICIES", "make_policy"]

#: Every policy class by its ``name``.
POLICIES: Final[dict[str, type[Policy]]] = {
    cls.name: cls
    for cls in (
        FixedThreshold,
        VariableUncertainty,
        RandomizedVariableUncertainty,
        Split,
        SelectiveSampling,
        BalancedIncrementalQuantileFilter,
        ConfidenceSplit,
    )
}


def make_policy(name: str, budget: float, *, seed: int | None = None, **params: Any) -> Policy:
    """Build the policy registered as ``name``.

    Parameters
    ----------
    name
        A key of :data:`POLICIES`.
    budget
        Fraction of events whose label may be asked, in ``(0, 1]``.
    seed
        Seed of the policy's random generator (ignored by deterministic policies).
    params
        Policy-specific keyword arguments (see each policy's class).

    Examples
    --------
    >>> from activestream.decide import make_policy
    >>> make_policy("biqf", 0.05, window=200)
    BalancedIncrementalQuantileFilter(budget=0.05, window=200, w_tol=50.0, budget_window=1000, seed=None)
    >>> make_policy("uncertainty", 0.05)
    Traceback (most recent call last):
    ...
    ValueError: unknown policy 'uncertainty'; valid names: biqf, confidence_split, fixed, ...

    """
    try:
        cls = POLICIES[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown policy {name!r}; valid names: {valid}") from None
    try:
        return cls(budget, seed=seed, **params)  # type: ignore[call-arg]
    except TypeError as error:
        # Name the policy: a bare "unexpected keyword argument" does not say which config was wrong.
        raise TypeError(f"bad parameters for policy {name!r}: {error}") from error
