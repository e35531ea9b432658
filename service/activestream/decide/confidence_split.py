"""Split with a variable threshold on the model's confidence, paced by the budget from the first event.

The default policy; see :class:`ConfidenceSplit`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Final

from activestream.decide.base import Verdict
from activestream.decide.budget import check_budget
from activestream.decide.policies import (
    BELOW_THRESHOLD,
    INFORMATIVE,
    OVER_BUDGET,
    RANDOM,
    _BudgetedPolicy,
    _check_fraction,
    _check_positive,
    _check_score,
    split_ask_proba,
)

__all__ = ["ConfidenceSplit"]

#: The budget estimator's window never goes below the older policies' default.
_MIN_WINDOW: Final = 1000
# The confidence threshold stays strictly positive: a threshold of 0 could never climb back
# multiplicatively.
_MIN_TAU: Final = 1e-6


def _score_threshold(tau: float, floor: float) -> float:
    """The threshold on the score equivalent to ``τ`` on the scale ``q = floor + (1 − floor)·(1 − score)``
    (``0`` while every event qualifies, ``τ ≥ 1``).

    >>> _score_threshold(1.0, 0.0), _score_threshold(0.8, 0.5), _score_threshold(0.25, 0.0)
    (0.0, 0.4, 0.75)
    """
    if tau >= 1.0:
        return 0.0
    threshold = 1.0 - (tau - floor) / (1.0 - floor)
    # ``min(1.0, max(0.0, threshold))`` (NaN included) at a third of its cost: read on every decision.
    return threshold if 0.0 < threshold <= 1.0 else (1.0 if threshold > 1.0 else 0.0)


def pacing_window(budget: float, pacing_asks: float) -> int:
    """The budget estimator's window in events: about ``pacing_asks`` asks at ``budget``.

    >>> pacing_window(0.01, 100), pacing_window(0.05, 100), pacing_window(0.2, 100)
    (10000, 2000, 1000)
    """
    return max(_MIN_WINDOW, math.ceil(pacing_asks / budget))


class ConfidenceSplit(_BudgetedPolicy):
    """Split with a variable threshold on the model's confidence, paced by the budget from the first event.

    The policy of Žliobaitė et al. (2014) as the paper states it and as MOA implements it
    (``moa.classifiers.active.ALUncertainty``, strategy ``VarUncertainty``), not as our older
    :class:`~activestream.decide.policies.VariableUncertainty` reads it. The differences are the whole point
    (``docs/strategies.md`` has the measurements):

    - **The threshold lives on the confidence** ``c = 1 − score`` (for two classes and the margin or least
      confidence measure, ``c = 2·p_max − 1``, a rescaled maximum posterior) and **starts at 1**: every
      event qualifies until the first asks have been made, so spending follows the budget from the first
      event whatever the model's calibration. The older policy starts at a score of 0.5 and walks down 1%
      per unasked event, so a confident or saturated model got no label for hundreds of events.
    - **Multiplicative steps on the confidence**: after an ask ``τ ← τ·(1−s)`` (ask only more uncertain
      events), after a discard ``τ ← min(1, τ·(1+s))``. Near a confident model's scores the steps are
      coarse, so the threshold does not close in on a thin band of near-boundary events: when the model is
      sure everywhere it degrades gracefully towards sampling whatever comes, paced by the budget.
    - **Budget pacing over a long window**: the budget estimator's window holds about ``pacing_asks`` asks
      (``pacing_asks / budget`` events, at least 1,000: 100,000 events at 1%, 10,000 at 10%), so a lull
      is paid back later in the stream, close to MOA's stream-long ratio, while credit and debt stay
      bounded over a months-long run.
    - **A random share** ``v`` (the paper's Split): each event goes with probability ``v`` to a uniformly
      random part that asks with probability ``budget``, not gated by the estimator (see
      :class:`~activestream.decide.policies.Split` for why). It keeps the asks from concentrating where the
      model already knows it is uncertain (drift away from the boundary is still seen), and it gives every
      event a positive ask probability, so accuracy can be estimated by inverse probability weighting
      from *every* label: ``Verdict.ask_proba = v·budget + (1 − v)·[qualifies and room]`` (``None``
      with ``v = 0``: the policy is then deterministic).

    Parameters
    ----------
    budget
        Fraction of events whose label may be asked, in ``(0, 1]``.
    v
        Probability in ``[0, 1)`` that an event goes to the random part.
    step
        Adjusting step ``s`` in ``(0, 1)`` of the confidence threshold.
    pacing_asks
        The budget estimator's window, in asks at the budget: ``max(1000, pacing_asks / budget)`` events.
    floor
        The scale the threshold walks on, ``q = floor + (1 − floor)·c`` in ``[floor, 1]``; an event qualifies
        when ``q < τ``. With ``0`` (the default) the steps are multiplicative on the confidence itself; with
        ``0.5``, ``q = (1 + c)/2`` is the maximum posterior of a two-class model, MOA's scale, whose steps
        are about ``2·s`` in confidence wherever the threshold is (coarser near the boundary). Measured
        within noise of ``0`` over the field grid (``docs/strategies.md``).
    seed
        Seed of the policy's random generator.
    budget_window
        The estimator's window in events, overriding ``pacing_asks`` when given.
    cold_random
        While the model has no opinion (a score of 1: a cold start, fewer than two classes known), the
        uncertainty part asks at random with probability ``budget`` when there is room, instead of every
        event it sees while there is room, and the threshold does not move. The default paces a cold
        model's asks evenly, so they are the same events on every seed and can fall in step with a
        periodic stream; this option samples them. Measured worse at 1–5% on the field grid
        (``docs/strategies.md``), so off by default.

    References
    ----------
    Žliobaitė, I., Bifet, A., Pfahringer, B. and Holmes, G. (2014). Active learning with drifting streaming
    data. IEEE Transactions on Neural Networks and Learning Systems, 25(1), 27-39.

    Bifet, A., Holmes, G., Kirkby, R. and Pfahringer, B. (2010). MOA: Massive Online Analysis. Journal of
    Machine Learning Research, 11, 1601-1604 (``ALUncertainty``, by Žliobaitė and Bifet).

    Examples
    --------
    A cold model is asked at once, and spending follows the budget from the start:

    >>> from activestream.decide import ConfidenceSplit
    >>> policy = ConfidenceSplit(budget=0.1, seed=3)
    >>> policy.decide(0.0).ask  # confidence 1, threshold 1: qualifies
    True
    >>> asks = sum(policy.decide(0.05).ask for _ in range(999))
    >>> asks + 1  # 10% of the first 1,000 events, although every score says "confident"
    101

    On MOA's scale (``floor=0.5``) a threshold ``τ = 0.8`` on the maximum posterior asks when the
    confidence is below 0.6, the score above 0.4:

    >>> moa = ConfidenceSplit(budget=1.0, v=0.0, floor=0.5)
    >>> moa.tau = 0.8
    >>> round(moa.threshold, 6), moa.decide(0.45).ask, moa.decide(0.3).ask
    (0.4, True, False)

    Every verdict carries its ask probability:

    >>> verdict = policy.decide(0.9)
    >>> round(verdict.ask_proba, 3) in (0.01, 0.91)
    True

    """

    name: ClassVar[str] = "confidence_split"

    def __init__(
        self,
        budget: float,
        *,
        v: float = 0.1,
        step: float = 0.01,
        pacing_asks: float = 1000.0,
        floor: float = 0.0,
        seed: int | None = None,
        budget_window: int | None = None,
        cold_random: bool = False,
    ) -> None:
        self.cold_random = bool(cold_random)
        self.pacing_asks = _check_positive(pacing_asks, "pacing_asks")
        budget = check_budget(budget)
        window = budget_window if budget_window is not None else pacing_window(budget, self.pacing_asks)
        super().__init__(budget, seed=seed, budget_window=window)
        self.v = _check_fraction(v, "v", low_open=False, high_open=True)
        self.step = _check_fraction(step, "step", high_open=True)
        self.floor = _check_fraction(floor, "floor", low_open=False, high_open=True)
        #: The threshold ``τ`` on ``q = floor + (1 − floor)·(1 − score)``: an event qualifies when ``q < τ``
        #: (or ``τ`` is 1).
        self.tau = 1.0
        #: Whether the last event went to the random part (whether or not it was asked).
        self.last_was_random = False
        self._explicit_window = budget_window is not None

    @property
    def threshold(self) -> float:
        """The threshold on the score equivalent to ``τ`` (``0`` while every event qualifies)."""
        return _score_threshold(self.tau, self.floor)

    @property
    def params(self) -> dict[str, float | int]:
        params: dict[str, float | int] = {"v": self.v, "step": self.step, "pacing_asks": self.pacing_asks}
        if self.floor:
            params["floor"] = self.floor
        if self._explicit_window:
            params["budget_window"] = self.estimator.window
        if getattr(self, "cold_random", False):
            params["cold_random"] = True
        return params

    def decide(self, score: float) -> Verdict:
        # One implementation of the rule, ``decide_many``'s loop (the service decides runs of events).
        (verdict,) = self.decide_many((score,))
        if isinstance(verdict, Exception):
            raise verdict
        return verdict

    def decide_many(self, scores: Sequence[float]) -> list[Verdict | Exception]:
        """The verdict on each score in turn, in one loop (the service decides runs of events): the
        estimator's ``record`` and ``has_room`` are inlined, the same operations in the same order. A score
        outside ``[0, 1]`` gives its ``ValueError`` in its place and changes nothing.

        >>> policy = ConfidenceSplit(budget=0.1, seed=7)
        >>> verdicts = policy.decide_many([0.3, float("nan")] + [0.05] * 998)
        >>> verdicts[1]
        ValueError('score must be an informativeness in [0, 1], got nan')
        >>> sum(v.ask for v in verdicts if isinstance(v, Verdict)), policy.estimator.n
        (100, 999)
        """
        estimator, draw = self.estimator, self._rng.random
        budget, v, floor = self.budget, self.v, self.floor
        up, down, span = 1.0 + self.step, 1.0 - self.step, 1.0 - floor
        # (older pickles lack the attribute; the very first ask is made at once, as without the option)
        cold_random = getattr(self, "cold_random", False)
        # The three ask probabilities (over both parts, from the state before the event) a verdict can
        # carry: the uncertainty part asks, does not, or (cold) asks at random at the budget rate.
        if_asked, if_not, if_cold = (split_ask_proba(v, budget, part) for part in (True, False, budget))
        unlimited = budget == 1.0
        tau, last_random = self.tau, self.last_was_random
        u, norm, decay, n = estimator._u, estimator._norm, estimator._decay, estimator.n
        verdicts: list[Verdict | Exception] = []
        for score in scores:
            if not 0.0 <= score <= 1.0:
                try:
                    _check_score(score)
                except ValueError as error:
                    verdicts.append(error)
                continue
            threshold = _score_threshold(tau, floor)
            # At its cap every event qualifies, including one the model is certain of (a pure tree leaf
            # scores exactly 0): certain is not right, and the budget, not the score, then paces the asks.
            qualifies = tau >= 1.0 or floor + span * (1.0 - score) < tau
            spending = u / norm if norm else 0.0
            room = spending < budget or unlimited
            cold = score >= 1.0 and cold_random and spending > 0.0
            ask_proba = (if_cold if cold else if_asked if qualifies else if_not) if room else if_not
            last_random = draw() < v
            if last_random:  # the random part: asks at the budget rate, not gated by the estimator
                ask = draw() < budget
                verdict = Verdict(ask, threshold, RANDOM, ask_proba)
            elif not room:  # discard and leave the threshold alone, as in the paper and MOA
                ask = False
                verdict = Verdict(False, threshold, OVER_BUDGET if qualifies else BELOW_THRESHOLD, ask_proba)
            elif cold:  # no opinion: a random ask says nothing about where τ should be
                ask = draw() < budget
                verdict = Verdict(ask, threshold, INFORMATIVE if ask else BELOW_THRESHOLD, ask_proba)
            elif qualifies:
                ask = True
                tau = max(_MIN_TAU, tau * down)
                verdict = Verdict(True, threshold, INFORMATIVE, ask_proba)
            else:
                ask = False
                tau = min(1.0, tau * up)
                verdict = Verdict(False, threshold, BELOW_THRESHOLD, ask_proba)
            u = u * decay + (1.0 if ask else 0.0)
            norm = norm * decay + 1.0
            n += 1
            verdicts.append(verdict)
        self.tau, self.last_was_random = tau, last_random
        estimator._u, estimator._norm, estimator.n = u, norm, n
        return verdicts
