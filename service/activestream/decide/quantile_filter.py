"""The balanced incremental quantile filter, BIQF (Kottke, Krempl and Spiliopoulou 2015)."""

from __future__ import annotations

import bisect
import collections
from typing import ClassVar

from activestream.decide.base import Verdict
from activestream.decide.budget import check_window
from activestream.decide.budgeted import BudgetedPolicy, check_positive, check_score

__all__ = ["BalancedIncrementalQuantileFilter"]


class BalancedIncrementalQuantileFilter(BudgetedPolicy):
    """Ask above a quantile of recent scores, balanced towards the budget.

    Balanced incremental quantile filter (BIQF) of Kottke, Krempl and Spiliopoulou (2015). With ``U``
    the last ``window`` scores (including the current one), ``t`` the number of events seen (including
    this one) and ``a`` the number asked before it, the event is asked if ``score ≥ θ_bal`` with

        ``θ_bal = Q_{1−budget}(U) − (max U − min U) · acq / w_tol``,   ``acq = budget·t − a``,

    where ``Q_q`` is the ``q``-quantile with linear interpolation. The quantile alone asks about a
    ``budget`` share of events; ``acq`` is how many asks the stream is owed (negative when
    overspent), and every ``w_tol`` asks owed move the threshold by the full range of recent scores.

    Our choices: ``acq`` is kept in ``[−w_tol, w_tol]`` (debt or credit beyond that is forgiven). At
    those bounds the threshold already sits at or beyond the edge of ``U``'s range (every event
    passes, or only the maximum can), so more debt changes nothing at once; but it would be paid
    later in a burst. The paper counts from the start of the stream, and a long stretch where the
    budget estimator blocks asks (or where all scores are equal and the range is 0) would otherwise
    build an unbounded debt. As in every policy here, nothing is asked while the windowed budget
    estimator has no room.

    Parameters
    ----------
    budget
        Fraction of events whose label may be asked, in ``(0, 1]``.
    window
        Number ``w`` of recent scores the quantile is taken over.
    w_tol
        Tolerance ``w_tol > 0``, in asks: owing this many asks lowers the threshold by the full range
        of recent scores.
    seed
        Unused (the policy is deterministic); accepted so every policy takes the same arguments.
    budget_window
        Window of the budget estimator, in events.

    References
    ----------
    Kottke, D., Krempl, G. and Spiliopoulou, M. (2015). Probabilistic active learning in datastreams.
    In Advances in Intelligent Data Analysis XIV (IDA 2015), LNCS 9385, 145-157. Springer.

    Examples
    --------
    >>> from activestream.decide import BalancedIncrementalQuantileFilter
    >>> policy = BalancedIncrementalQuantileFilter(budget=0.25, window=4, w_tol=10)
    >>> [policy.decide(s).reason for s in (0.1, 0.2, 0.3, 0.4)]
    ['informative', 'over_budget', 'over_budget', 'over_budget']
    >>> policy.owed  # 4 events at 0.25, 1 ask
    0.0

    With ``U = [0.2, 0.3, 0.4, 0.5]`` the 0.75-quantile is 0.425, lowered by the range 0.3 times
    ``acq/w_tol = 0.25/10``:

    >>> policy.decide(0.5)
    Verdict(ask=True, threshold=0.4175, reason='informative')

    """

    name: ClassVar[str] = "biqf"

    def __init__(
        self,
        budget: float,
        *,
        window: int = 100,
        w_tol: float = 50,
        seed: int | None = None,
        budget_window: int = 1000,
    ) -> None:
        super().__init__(budget, seed=seed, budget_window=budget_window)
        self.window = check_window(window)
        self.w_tol = check_positive(w_tol, "w_tol")
        self._recent: collections.deque[float] = collections.deque()
        self._sorted: list[float] = []
        #: Asks owed to the budget, ``acq`` above (before the current event's share).
        self.owed = 0.0

    @property
    def params(self) -> dict[str, float | int]:
        return {"window": self.window, "w_tol": self.w_tol, **super().params}

    def decide(self, score: float) -> Verdict:
        check_score(score)
        self._remember(score)
        owed = self.owed + self.budget
        spread = self._sorted[-1] - self._sorted[0]
        threshold = self._quantile(1.0 - self.budget) - spread * owed / self.w_tol
        verdict = self._gate(score >= threshold, threshold)
        owed -= verdict.ask
        self.owed = min(max(owed, -self.w_tol), self.w_tol)
        return verdict

    def _remember(self, score: float) -> None:
        self._recent.append(score)
        bisect.insort(self._sorted, score)
        if len(self._recent) > self.window:
            oldest = self._recent.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]

    def _quantile(self, q: float) -> float:
        # Linear interpolation between order statistics (numpy's default method).
        values = self._sorted
        position = q * (len(values) - 1)
        low = int(position)
        if low + 1 >= len(values):
            return values[-1]
        return values[low] + (position - low) * (values[low + 1] - values[low])
