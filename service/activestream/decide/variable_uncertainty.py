"""Variable uncertainty and its randomised variant: thresholds that adapt to how often scores reach them
(Žliobaitė et al. 2014)."""

from __future__ import annotations

import math
from typing import ClassVar, Final

from activestream.decide.base import Verdict
from activestream.decide.budgeted import BudgetedPolicy, check_fraction, check_positive, check_score
from activestream.decide.reasons import BELOW_THRESHOLD, INFORMATIVE, OVER_BUDGET

__all__ = ["RandomizedVariableUncertainty", "VariableUncertainty"]

# Adaptive thresholds stay strictly positive (a threshold of 0 would ask for events that carry no
# information at all and could never climb back multiplicatively).
_MIN_THRESHOLD: Final = 1e-6


def _normal_cdf(z: float) -> float:
    """The standard normal distribution function."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


class VariableUncertainty(BudgetedPolicy):
    """Ask above a threshold that adapts to how often scores reach it.

    Žliobaitė et al. (2014), algorithm "VarUncertainty". The paper thresholds the maximum posterior
    ``p_max`` (ask if ``p_max < θ_c``), lowering ``θ_c`` after an ask and raising it otherwise. Our
    scores run the other way (high informativeness = low confidence), so the same dynamics read:

    - with no room in the budget, do not ask and leave ``θ`` alone (as in the paper);
    - otherwise ask if ``score ≥ θ``; after an ask ``θ ← θ·(1+s)`` (ask less), after a discard
      ``θ ← θ·(1−s)`` (ask more); ``θ`` is kept in ``(0, 1]``.

    So in a quiet period (the model is confident and scores are low) the threshold keeps decreasing
    until it catches the most informative of the low scores, and the budget is spent on them rather
    than saved for later. A model stuck on constant low scores therefore still gets labels; one whose
    scores are exactly 0 (fully certain) too: once ``θ`` reaches its floor every event qualifies.

    Parameters
    ----------
    budget
        Fraction of events whose label may be asked, in ``(0, 1]``.
    threshold
        Initial ``θ`` in ``(0, 1]``.
    step
        Adjusting step ``s`` in ``(0, 1)``.
    seed
        Unused (the policy is deterministic); accepted so every policy takes the same arguments.
    budget_window
        Window of the budget estimator, in events.

    References
    ----------
    Žliobaitė, I., Bifet, A., Pfahringer, B. and Holmes, G. (2014). Active learning with drifting
    streaming data. IEEE Transactions on Neural Networks and Learning Systems, 25(1), 27-39.

    Examples
    --------
    >>> from activestream.decide import VariableUncertainty
    >>> policy = VariableUncertainty(budget=0.5, threshold=0.5, step=0.1)
    >>> policy.decide(0.2)
    Verdict(ask=False, threshold=0.5, reason='below_threshold')
    >>> policy.threshold  # lowered after the discard
    0.45
    >>> policy.decide(0.8)
    Verdict(ask=True, threshold=0.45, reason='informative')
    >>> policy.threshold  # raised after the ask
    0.495
    >>> policy.decide(0.9)  # one ask in two events: spending 0.5, no room; θ stays
    Verdict(ask=False, threshold=0.495, reason='over_budget')

    """

    name: ClassVar[str] = "variable_uncertainty"

    def __init__(
        self,
        budget: float,
        *,
        threshold: float = 0.5,
        step: float = 0.01,
        seed: int | None = None,
        budget_window: int = 1000,
    ) -> None:
        super().__init__(budget, seed=seed, budget_window=budget_window)
        self.initial_threshold = check_fraction(threshold, "threshold")
        #: The current (adapted) threshold ``θ``.
        self.threshold = max(self.initial_threshold, _MIN_THRESHOLD)
        self.step = check_fraction(step, "step", high_open=True)

    def decide(self, score: float) -> Verdict:
        check_score(score)
        return self._decide_uncertainty(score, self._effective_threshold(), self._qualify_proba(score))

    def _effective_threshold(self) -> float:
        """The threshold this event is compared with (randomised by a subclass)."""
        return self.threshold

    def _qualify_proba(self, score: float) -> float | None:
        """The probability that ``score`` qualifies (``None``: deterministic, 0 or 1)."""
        return None

    def _at_floor(self) -> bool:
        # At the floor, θ has decayed through every score the model gives: it is certain everywhere
        # (a pure Hoeffding-tree leaf scores exactly 0). Certain is not right — after a drift it is
        # confidently wrong — so every event then qualifies, and the budget, not the score, paces asks.
        return self.threshold <= _MIN_THRESHOLD

    def _decide_uncertainty(self, score: float, threshold: float, proba: float | None = None) -> Verdict:
        informative = score >= threshold or self._at_floor()
        if not self.estimator.has_room:
            # No room: discard and leave the threshold alone, as in the paper.
            self.estimator.record(False)
            reason = OVER_BUDGET if informative else BELOW_THRESHOLD
            return Verdict(False, threshold, reason, None if proba is None else 0.0)
        self.estimator.record(informative)
        self._adapt(informative)
        return Verdict(informative, threshold, INFORMATIVE if informative else BELOW_THRESHOLD, proba)

    def _adapt(self, asked: bool) -> None:
        if asked:
            self.threshold = min(1.0, self.threshold * (1.0 + self.step))
        else:
            self.threshold = max(_MIN_THRESHOLD, self.threshold * (1.0 - self.step))

    @property
    def params(self) -> dict[str, float | int]:
        return {"threshold": self.initial_threshold, "step": self.step, **super().params}


class RandomizedVariableUncertainty(VariableUncertainty):
    """Variable uncertainty with a randomised threshold.

    Žliobaitė et al. (2014), algorithm "RanVarUncertainty": as :class:`VariableUncertainty`, but each
    event is compared with ``θ·η``, ``η ~ N(1, δ)``, drawn afresh per event; ``θ`` itself adapts as in
    :class:`VariableUncertainty`. The noise lets some events far from the decision boundary be asked
    (when ``θ·η`` is low) and skips some near it, so changes away from the current boundary
    (concept drift the model has not noticed) still get labels. ``Verdict.threshold`` is ``θ·η``.

    Parameters
    ----------
    budget
        Fraction of events whose label may be asked, in ``(0, 1]``.
    threshold
        Initial ``θ`` in ``(0, 1]``.
    step
        Adjusting step ``s`` in ``(0, 1)``.
    delta
        Standard deviation ``δ ≥ 0`` of the multiplier ``η`` (``1.0`` as in the paper; ``0`` gives
        :class:`VariableUncertainty`).
    seed
        Seed of the policy's random generator.
    budget_window
        Window of the budget estimator, in events.

    References
    ----------
    Žliobaitė, I., Bifet, A., Pfahringer, B. and Holmes, G. (2014). Active learning with drifting
    streaming data. IEEE Transactions on Neural Networks and Learning Systems, 25(1), 27-39.

    Examples
    --------
    >>> from activestream.decide import RandomizedVariableUncertainty
    >>> policy = RandomizedVariableUncertainty(budget=0.1, seed=42)
    >>> verdicts = [policy.decide(0.5) for _ in range(1000)]
    >>> sum(v.ask for v in verdicts)
    101
    >>> sorted({v.reason for v in verdicts})
    ['below_threshold', 'informative', 'over_budget']

    """

    name: ClassVar[str] = "randomized_variable_uncertainty"

    def __init__(
        self,
        budget: float,
        *,
        threshold: float = 0.5,
        step: float = 0.01,
        delta: float = 1.0,
        seed: int | None = None,
        budget_window: int = 1000,
    ) -> None:
        super().__init__(budget, threshold=threshold, step=step, seed=seed, budget_window=budget_window)
        self.delta = check_positive(delta, "delta", zero_ok=True)

    @property
    def params(self) -> dict[str, float | int]:
        return {**super().params, "delta": self.delta}

    def _effective_threshold(self) -> float:
        # Drawn for every event, whatever the budget state, so the generator advances one draw per event.
        return self.threshold * self._rng.gauss(1.0, self.delta)

    def _qualify_proba(self, score: float) -> float | None:
        # score ≥ θ·η with η ~ N(1, δ): P = Φ((score/θ − 1)/δ); θ > 0 always.
        if self.delta == 0.0:
            return None
        if self._at_floor():
            return 1.0
        return _normal_cdf((score / self.threshold - 1.0) / self.delta)
