"""Windowed estimate of how much of the labeling budget is being spent."""

from __future__ import annotations

__all__ = ["WindowedBudget", "check_budget", "check_window"]


def check_budget(budget: float) -> float:
    """Return ``budget`` as a float if it is a fraction in ``(0, 1]``, else raise ``ValueError``."""
    if isinstance(budget, bool) or not isinstance(budget, int | float):
        raise TypeError(f"budget must be a number in (0, 1], got {type(budget).__name__} {budget!r}")
    # ``not 0 < b <= 1`` is also true for NaN, so NaN is rejected here as well.
    if not 0.0 < budget <= 1.0:
        raise ValueError(
            f"budget must be a fraction of events in (0, 1], got {budget!r} "
            "(e.g. 0.05 asks for the labels of about 5% of events)"
        )
    return float(budget)


def check_window(window: int, what: str = "window") -> int:
    """Return ``window`` if it is an integer ``>= 1``, else raise ``ValueError``."""
    if isinstance(window, bool) or not isinstance(window, int):
        raise TypeError(f"{what} must be an int >= 1, got {type(window).__name__} {window!r}")
    if window < 1:
        raise ValueError(f"{what} must be >= 1 events, got {window}")
    return window


class WindowedBudget:
    """Exponentially windowed estimate of the fraction of events asked.

    The rule of Žliobaitė et al. (2014): after each event, ``u ← u·(w−1)/w + ask`` with ``ask`` 1 if the
    label was asked and 0 otherwise; ``u/w`` is the fraction of the last (about) ``w`` events that were
    asked, and there is room for another ask while it is below the budget.

    An ask counts when it is *requested*, not when its label arrives. Labels asked but not answered yet are
    already spent, so however late the answers come (label delay), they cannot make the estimator think
    there is room that has in fact been promised away.

    Early-stream bias. ``u/w`` assumes ``w`` events have been seen: after ``n < w`` events it divides by
    too much and underestimates spending (after one ask in one event it reads ``1/w``), so a policy
    would ask for almost every early event. We divide instead by the total weight of the events seen,
    ``norm ← norm·(w−1)/w + 1`` (that is ``Σ_{j<n} ((w−1)/w)^j``, which tends to ``w``), the same bias
    correction as Adam's moment estimates. The estimate is then an exact weighted average of the asks
    seen so far: ``0`` before any event (so the first event of a cold start can be asked), ``1`` after
    an ask in the first event, about ``1/n`` after one ask in ``n ≪ w`` events (so the next ask comes
    after about ``1/budget`` events), and ``u/w`` once ``n ≫ w``.

    A policy that asks whenever there is room spends about ``budget + 1/(2w)`` in the long run: asks
    are allowed while the estimate is just below the budget, and each lifts it by up to ``1/w``
    (with ``w = 1000``, about 1.05% for a 1% budget).

    Parameters
    ----------
    budget
        Fraction of events whose label may be asked, in ``(0, 1]``.
    window
        Length ``w`` of the (exponential) window, in events.

    References
    ----------
    Žliobaitė, I., Bifet, A., Pfahringer, B. and Holmes, G. (2014). Active learning with drifting
    streaming data. IEEE Transactions on Neural Networks and Learning Systems, 25(1), 27-39.

    Examples
    --------
    >>> from activestream.decide import WindowedBudget
    >>> est = WindowedBudget(budget=0.1, window=100)
    >>> est.spending, est.has_room
    (0.0, True)
    >>> est.record(True)
    >>> est.spending, est.has_room
    (1.0, False)
    >>> for _ in range(9):
    ...     est.record(False)
    >>> round(est.spending, 3), est.has_room
    (0.096, True)

    """

    __slots__ = ("_decay", "_norm", "_u", "budget", "n", "window")

    def __init__(self, budget: float, window: int = 1000) -> None:
        self.budget = check_budget(budget)
        self.window = check_window(window)
        self._decay = (self.window - 1) / self.window
        self._u = 0.0
        self._norm = 0.0
        #: Number of events recorded.
        self.n = 0

    def record(self, asked: bool) -> None:
        """Account for one event; ``asked`` says whether its label was asked (at request time)."""
        self._u = self._u * self._decay + (1.0 if asked else 0.0)
        self._norm = self._norm * self._decay + 1.0
        self.n += 1

    def amend(self, recorded: bool, asked: bool) -> None:
        """Correct the last event's record from ``recorded`` to ``asked`` (no event recorded since).

        >>> est = WindowedBudget(budget=0.1, window=100)
        >>> est.record(True)
        >>> est.amend(True, False)
        >>> est.spending, est.n
        (0.0, 1)
        """
        self._u += float(asked) - float(recorded)

    @property
    def spending(self) -> float:
        """Bias-corrected windowed fraction of events asked, in ``[0, 1]`` (``0`` before any event)."""
        return self._u / self._norm if self._norm else 0.0

    @property
    def has_room(self) -> bool:
        """Whether there is room for another ask: ``spending < budget``, and always with a budget of 1.

        (With a budget of 1 every event may be asked; ``spending < 1`` would refuse every other one.)
        """
        return self.spending < self.budget or self.budget == 1.0

    def __repr__(self) -> str:
        return (
            f"WindowedBudget(budget={self.budget!r}, window={self.window!r}, "
            f"n={self.n}, spending={self.spending:.4f})"
        )
