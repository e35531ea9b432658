"""Selective sampling: ask with a probability that falls with the distance from the decision boundary
(Cesa-Bianchi, Gentile and Zaniboni 2006), paced to the budget."""

from __future__ import annotations

from typing import ClassVar, Final

from activestream.decide.base import Verdict
from activestream.decide.budgeted import BudgetedPolicy, check_fraction, check_positive, check_score

__all__ = ["SelectiveSampling"]

# Bounds for SelectiveSampling's b: far beyond anything useful, they only keep it finite and positive.
_MIN_B: Final = 1e-6
_MAX_B: Final = 1e6


class SelectiveSampling(BudgetedPolicy):
    """Ask with a probability that falls with the distance from the decision boundary.

    Cesa-Bianchi, Gentile and Zaniboni (2006): ask with probability ``b / (b + d)``, where ``d ≥ 0`` is
    the distance of the event to the decision boundary (the paper's ``|p̂|``, the margin of a linear
    classifier). On informativeness we take ``d = 1 − score``: for the least-confidence score of a
    ``C``-class model, ``score = (1 − p_max)·C/(C−1)``, so ``1 − score = (p_max − 1/C)·C/(C−1)``, the
    distance of ``p_max`` from the uniform posterior ``1/C`` (``|p − 1/2|`` for two classes) up to the
    constant ``C/(C−1)``, which only rescales ``b``. An untrained model (``score = 1``) is always asked
    (``d = 0``), subject to the budget.

    Our addition, to hit a budget (the paper has none, and ``b`` sets the labeling rate only
    indirectly): after each event ``b ← b·(1+s)`` if the budget estimator had room, and
    ``b ← b·(1−s)`` if it had not, so the asking probability settles where asks are paced by the
    scores rather than cut by the budget; ``b`` is kept in ``[1e-6, 1e6]``.

    ``Verdict.threshold`` is the score threshold equivalent to this event's draw ``ξ ~ U[0, 1)``:
    ``ξ < b/(b + 1 − score)`` exactly when ``score > 1 − b·(1−ξ)/ξ``, reported clipped to ``[0, 1]``.

    Parameters
    ----------
    budget
        Fraction of events whose label may be asked, in ``(0, 1]``.
    b
        Initial ``b > 0`` (default: ``budget``).
    step
        Adjusting step ``s`` in ``(0, 1)`` for ``b``.
    seed
        Seed of the policy's random generator.
    budget_window
        Window of the budget estimator, in events.

    References
    ----------
    Cesa-Bianchi, N., Gentile, C. and Zaniboni, L. (2006). Worst-case analysis of selective sampling
    for linear classification. Journal of Machine Learning Research, 7, 1205-1230.

    Examples
    --------
    >>> from activestream.decide import SelectiveSampling
    >>> policy = SelectiveSampling(budget=0.1, seed=1)
    >>> policy.decide(1.0)  # untrained model: d = 0, always asked while the budget has room
    Verdict(ask=True, threshold=0.3557..., reason='informative')
    >>> policy.decide(1.0)
    Verdict(ask=False, threshold=0.9818..., reason='over_budget')
    >>> sum(policy.decide(0.2).ask for _ in range(2000))
    199
    >>> round(policy.b, 2)
    0.21

    """

    name: ClassVar[str] = "selective_sampling"

    def __init__(
        self,
        budget: float,
        *,
        b: float | None = None,
        step: float = 0.01,
        seed: int | None = None,
        budget_window: int = 1000,
    ) -> None:
        super().__init__(budget, seed=seed, budget_window=budget_window)
        self.initial_b = self.budget if b is None else check_positive(b, "b")
        #: The current (adapted) ``b``.
        self.b = min(max(self.initial_b, _MIN_B), _MAX_B)
        self.step = check_fraction(step, "step", high_open=True)

    @property
    def params(self) -> dict[str, float | int]:
        return {"b": self.initial_b, "step": self.step, **super().params}

    def decide(self, score: float) -> Verdict:
        check_score(score)
        b, distance = self.b, 1.0 - score
        xi = self._rng.random()
        # ξ < b/(b+d), without the division; d = 0 always passes.
        informative = xi * (b + distance) < b
        threshold = max(0.0, 1.0 - b * (1.0 - xi) / xi) if xi > 0.0 else 0.0
        factor = 1.0 + self.step if self.estimator.has_room else 1.0 - self.step
        self.b = min(max(b * factor, _MIN_B), _MAX_B)
        return self._gate(informative, threshold, b / (b + distance))
