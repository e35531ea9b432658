"""What every threshold policy shares: argument checks and the budget gate (:class:`BudgetedPolicy`).

The policies themselves, one family a module, are listed in :mod:`activestream.decide.policies`.
"""

from __future__ import annotations

import math
import random

from activestream.decide.base import Policy, Verdict
from activestream.decide.budget import WindowedBudget, check_budget, check_window
from activestream.decide.reasons import BELOW_THRESHOLD, INFORMATIVE, OVER_BUDGET

__all__ = ["BudgetedPolicy", "check_fraction", "check_positive", "check_score"]


def check_fraction(value: float, what: str, *, low_open: bool = True, high_open: bool = False) -> float:
    """Return ``value`` as a float if it lies in the interval, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    above = value > 0.0 if low_open else value >= 0.0
    below = value < 1.0 if high_open else value <= 1.0
    if not (above and below):
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ValueError(f"{what} must be in {interval}, got {value!r}")
    return float(value)


def check_positive(value: float, what: str, *, zero_ok: bool = False) -> float:
    """Return ``value`` as a float if it is finite and ``> 0`` (``>= 0``), else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    if not ((value >= 0.0 if zero_ok else value > 0.0) and value < math.inf):
        raise ValueError(f"{what} must be a finite number {'>=' if zero_ok else '>'} 0, got {value!r}")
    return float(value)


def check_score(score: float) -> None:
    """Raise ``ValueError`` unless ``score`` is an informativeness in ``[0, 1]``."""
    # Fail loudly: a NaN would silently never be asked and would corrupt sorted score windows.
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score must be an informativeness in [0, 1], got {score!r}")


class BudgetedPolicy(Policy):
    """Shared plumbing: budget validation, the seeded generator and the windowed budget estimator."""

    def __init__(self, budget: float, *, seed: int | None, budget_window: int) -> None:
        self.budget = check_budget(budget)
        self.seed = seed
        # One generator per policy, consumed in stream order: same seed and scores, same decisions.
        self._rng = random.Random(seed)
        self.estimator = WindowedBudget(self.budget, check_window(budget_window, "budget_window"))

    @property
    def spending(self) -> float:
        """Windowed estimate of the fraction of recent events that were asked."""
        return self.estimator.spending

    def _gate(self, informative: bool, threshold: float, proba: float | None = None) -> Verdict:
        """Ask if ``informative`` and the budget has room; count the decision at once.

        ``proba`` is the probability that the event was ``informative`` (randomized policies): the
        verdict's ``ask_proba`` is that with room and 0 without.
        """
        room = self.estimator.has_room
        ask = informative and room
        self.estimator.record(ask)
        ask_proba = None if proba is None else (proba if room else 0.0)
        if ask:
            return Verdict(True, threshold, INFORMATIVE, ask_proba)
        return Verdict(False, threshold, OVER_BUDGET if informative else BELOW_THRESHOLD, ask_proba)

    def overrule(self, decided: bool, asked: bool) -> None:
        """Count ``asked`` instead of ``decided`` for the last event (the threshold stays as it moved)."""
        self.estimator.amend(decided, asked)

    def _random_ask(self) -> bool:
        """The random part of a Split: ask with probability ``budget``, whatever the score and the room
        (see :class:`~activestream.decide.split.Split` for why it is not gated), counted by the estimator
        all the same."""
        ask = self._rng.random() < self.budget
        self.estimator.record(ask)
        return ask

    @property
    def params(self) -> dict[str, float | int]:
        """The policy-specific constructor arguments, so that
        ``make_policy(p.name, p.budget, seed=p.seed, **p.params)`` builds a fresh copy of ``p``."""
        return {"budget_window": self.estimator.window}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}(budget={self.budget!r}, {args}, seed={self.seed!r})"
