"""The fixed-threshold baseline policy (:class:`FixedThreshold`)."""

from __future__ import annotations

from typing import ClassVar

from activestream.decide.base import Verdict
from activestream.decide.budgeted import BudgetedPolicy, check_fraction, check_score

__all__ = ["FixedThreshold"]


class FixedThreshold(BudgetedPolicy):
    """Ask when the score reaches a fixed threshold and the budget has room.

    The "fixed uncertainty" strategy of Žliobaitė et al. (2014), on informativeness: ask if
    ``score ≥ θ`` and the windowed spending is below the budget.

    A fixed threshold can stall: if the model's scores all stay below ``θ`` (e.g. a model stuck on the
    majority class scoring everything ``0.05``), it never asks again, and without labels the model
    cannot get unstuck. The adaptive policies do not have this problem; use this one as a baseline.

    Parameters
    ----------
    budget
        Fraction of events whose label may be asked, in ``(0, 1]``.
    threshold
        ``θ`` in ``[0, 1]``.
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
    >>> from activestream.decide import FixedThreshold
    >>> policy = FixedThreshold(budget=0.4, threshold=0.6)
    >>> policy.decide(0.9)
    Verdict(ask=True, threshold=0.6, reason='informative')
    >>> policy.decide(0.3)
    Verdict(ask=False, threshold=0.6, reason='below_threshold')
    >>> policy.decide(0.9)  # one ask in two events: spending 0.5 > budget, no room
    Verdict(ask=False, threshold=0.6, reason='over_budget')

    """

    name: ClassVar[str] = "fixed"

    def __init__(
        self,
        budget: float,
        *,
        threshold: float = 0.5,
        seed: int | None = None,
        budget_window: int = 1000,
    ) -> None:
        super().__init__(budget, seed=seed, budget_window=budget_window)
        self.threshold = check_fraction(threshold, "threshold", low_open=False)

    @property
    def params(self) -> dict[str, float | int]:
        return {"threshold": self.threshold, **super().params}

    def decide(self, score: float) -> Verdict:
        check_score(score)
        return self._gate(score >= self.threshold, self.threshold)
