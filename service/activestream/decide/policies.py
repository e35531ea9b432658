"""Threshold policies: ask for a label when the score is high enough and the budget has room.

Every policy keeps a :class:`~activestream.decide.budget.WindowedBudget` and never asks while that
estimator has no room (one documented exception below), so spending stays on budget whatever the
scores look like; the policies differ in *which* events they spend the budget on. Scores are
informativeness in ``[0, 1]`` (higher = more informative, ``1.0`` for an untrained model).

``Verdict.reason`` is always one of :data:`REASONS`:

- ``"informative"``: asked because the score reached the threshold;
- ``"random"``: decided by a random draw that ignores the score (the random part of :class:`Split`),
  whether it asked or not; these asks are an unbiased sample of the stream;
- ``"below_threshold"``: not asked, the score is below the threshold;
- ``"over_budget"``: not asked although the score reached the threshold, because the budget estimator
  has no room.

The one exception to the budget check is the random part of :class:`Split` (see there for why).

``Verdict.ask_proba`` is the probability, from the policy's state before the event, that an event with
this score is asked: Split (``v·budget`` plus ``1 − v`` when the uncertainty part would ask),
randomized variable uncertainty (``Φ((score/θ − 1)/δ)`` with room, 0 without) and selective sampling
(``b/(b + 1 − score)`` with room, 0 without) report it, so the accuracy estimates can weight each
label by ``1/p`` (:mod:`activestream.drift.estimates`). The deterministic policies (fixed, variable
uncertainty, BIQF; Split with ``v = 0``, randomized VU with ``δ = 0``) report ``None``.
"""

from __future__ import annotations

import bisect
import collections
import math
import random
from typing import ClassVar, Final

from activestream.decide.base import Policy, Verdict
from activestream.decide.budget import WindowedBudget, check_budget, check_window

__all__ = [
    "BELOW_THRESHOLD",
    "INFORMATIVE",
    "OVER_BUDGET",
    "RANDOM",
    "REASONS",
    "BalancedIncrementalQuantileFilter",
    "FixedThreshold",
    "RandomizedVariableUncertainty",
    "SelectiveSampling",
    "Split",
    "VariableUncertainty",
]

INFORMATIVE: Final = "informative"
RANDOM: Final = "random"
BELOW_THRESHOLD: Final = "below_threshold"
OVER_BUDGET: Final = "over_budget"
#: Every value ``Verdict.reason`` can take (it becomes a metric label, so the set stays small and fixed).
REASONS: Final = frozenset({INFORMATIVE, RANDOM, BELOW_THRESHOLD, OVER_BUDGET})

# Adaptive thresholds stay strictly positive (a threshold of 0 would ask for events that carry no
# information at all and could never climb back multiplicatively).
_MIN_THRESHOLD: Final = 1e-6


def _check_fraction(value: float, what: str, *, low_open: bool = True, high_open: bool = False) -> float:
    """Return ``value`` as a float if it lies in the interval, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    above = value > 0.0 if low_open else value >= 0.0
    below = value < 1.0 if high_open else value <= 1.0
    if not (above and below):
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ValueError(f"{what} must be in {interval}, got {value!r}")
    return float(value)


def _check_positive(value: float, what: str, *, zero_ok: bool = False) -> float:
    """Return ``value`` as a float if it is finite and ``> 0`` (``>= 0``), else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    if not ((value >= 0.0 if zero_ok else value > 0.0) and value < math.inf):
        raise ValueError(f"{what} must be a finite number {'>=' if zero_ok else '>'} 0, got {value!r}")
    return float(value)


def _normal_cdf(z: float) -> float:
    """The standard normal distribution function."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def split_ask_proba(v: float, budget: float, uncertainty_part_asks: bool) -> float | None:
    """A Split's ask probability: ``v·budget``, plus ``1 − v`` when its uncertainty part would ask;
    ``None`` with no random part (``v = 0``: the policy is deterministic).

    >>> split_ask_proba(0.2, 0.1, True), split_ask_proba(0.2, 0.1, False), split_ask_proba(0.0, 0.1, True)
    (0.82, 0.02, None)
    """
    return v * budget + (1.0 - v) * uncertainty_part_asks if v > 0.0 else None


def _check_score(score: float) -> None:
    # Fail loudly: a NaN would silently never be asked and would corrupt sorted score windows.
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score must be an informativeness in [0, 1], got {score!r}")


class _BudgetedPolicy(Policy):
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
        (see :class:`Split` for why it is not gated), counted by the estimator all the same."""
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


class FixedThreshold(_BudgetedPolicy):
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
        self.threshold = _check_fraction(threshold, "threshold", low_open=False)

    @property
    def params(self) -> dict[str, float | int]:
        return {"threshold": self.threshold, **super().params}

    def decide(self, score: float) -> Verdict:
        _check_score(score)
        return self._gate(score >= self.threshold, self.threshold)


class VariableUncertainty(_BudgetedPolicy):
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
        self.initial_threshold = _check_fraction(threshold, "threshold")
        #: The current (adapted) threshold ``θ``.
        self.threshold = max(self.initial_threshold, _MIN_THRESHOLD)
        self.step = _check_fraction(step, "step", high_open=True)

    def decide(self, score: float) -> Verdict:
        _check_score(score)
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
        self.delta = _check_positive(delta, "delta", zero_ok=True)

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


class Split(VariableUncertainty):
    """Spend part of the budget on a uniform random sample, the rest on variable uncertainty.

    Žliobaitė et al. (2014), algorithm "Split": each event goes, with probability ``v``, to the random
    part, where it is asked with probability ``budget`` (``Verdict.reason == "random"``, asked or
    not); the other events go through :class:`VariableUncertainty` (whose threshold only adapts on
    those). ``Verdict.threshold`` is the variable-uncertainty threshold ``θ`` in both parts.

    The random part is the one documented exception to the budget check: its asks are made whether
    or not the estimator has room (they are still counted by it, so the uncertainty part spends only
    what they leave). The paper checks the budget first for both parts; we do not, because:

    - the random asks must be an unbiased sample of the stream, which evaluation uses for quality
      estimates. Gated, they happen only when the uncertainty part has left room, that is mostly in
      quiet periods, and almost never during a drift, when the model is at its worst (and at a 1%
      budget, only a handful per 50,000 events);
    - with ``v = 1`` this policy is the random-sampling baseline (each event asked with probability
      ``budget``); gated, it would spend less than its budget (measured: 3% less at a 20% budget,
      14% less at 1%).

    They cannot overspend: they are a ``Bernoulli(budget)`` draw on a ``v`` share of events, so they
    spend ``v·budget`` in expectation, with no bursts beyond binomial noise.
    :attr:`last_was_random` says whether the last event went to the random part.

    Parameters
    ----------
    budget
        Fraction of events whose label may be asked, in ``(0, 1]``.
    v
        Probability in ``[0, 1]`` that an event goes to the random part (``1`` gives random sampling).
    threshold
        Initial ``θ`` in ``(0, 1]`` of the variable-uncertainty part.
    step
        Adjusting step ``s`` in ``(0, 1)`` of the variable-uncertainty part.
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
    >>> from collections import Counter
    >>> from activestream.decide import Split
    >>> policy = Split(budget=0.1, v=0.2, seed=7)
    >>> verdicts = [policy.decide(0.9) for _ in range(5000)]
    >>> Counter(v.reason for v in verdicts if v.ask)  # about 0.2 × 0.1 × 5000 = 100 random asks
    Counter({'informative': 396, 'random': 106})
    >>> policy.last_was_random == (verdicts[-1].reason == "random")
    True

    """

    name: ClassVar[str] = "split"

    def __init__(
        self,
        budget: float,
        *,
        v: float = 0.2,
        threshold: float = 0.5,
        step: float = 0.01,
        seed: int | None = None,
        budget_window: int = 1000,
    ) -> None:
        super().__init__(budget, threshold=threshold, step=step, seed=seed, budget_window=budget_window)
        self.v = _check_fraction(v, "v", low_open=False)
        #: Whether the last event went to the random part (whether or not it was asked).
        self.last_was_random = False

    @property
    def params(self) -> dict[str, float | int]:
        return {**super().params, "v": self.v}

    def decide(self, score: float) -> Verdict:
        _check_score(score)
        self.last_was_random = self._rng.random() < self.v
        if not self.last_was_random:
            # The uncertainty part asks exactly when the score qualifies and there is room: its verdict
            # gives the ask probability without judging the score twice.
            verdict = self._decide_uncertainty(score, self.threshold)
            ask_proba = split_ask_proba(self.v, self.budget, verdict.ask)
            return Verdict(verdict.ask, verdict.threshold, verdict.reason, ask_proba)
        qualifies = (score >= self.threshold or self._at_floor()) and self.estimator.has_room
        return Verdict(
            self._random_ask(), self.threshold, RANDOM, split_ask_proba(self.v, self.budget, qualifies)
        )


# Bounds for SelectiveSampling's b: far beyond anything useful, they only keep it finite and positive.
_MIN_B: Final = 1e-6
_MAX_B: Final = 1e6


class SelectiveSampling(_BudgetedPolicy):
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
        self.initial_b = self.budget if b is None else _check_positive(b, "b")
        #: The current (adapted) ``b``.
        self.b = min(max(self.initial_b, _MIN_B), _MAX_B)
        self.step = _check_fraction(step, "step", high_open=True)

    @property
    def params(self) -> dict[str, float | int]:
        return {"b": self.initial_b, "step": self.step, **super().params}

    def decide(self, score: float) -> Verdict:
        _check_score(score)
        b, distance = self.b, 1.0 - score
        xi = self._rng.random()
        # ξ < b/(b+d), without the division; d = 0 always passes.
        informative = xi * (b + distance) < b
        threshold = max(0.0, 1.0 - b * (1.0 - xi) / xi) if xi > 0.0 else 0.0
        factor = 1.0 + self.step if self.estimator.has_room else 1.0 - self.step
        self.b = min(max(b * factor, _MIN_B), _MAX_B)
        return self._gate(informative, threshold, b / (b + distance))


class BalancedIncrementalQuantileFilter(_BudgetedPolicy):
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
        self.w_tol = _check_positive(w_tol, "w_tol")
        self._recent: collections.deque[float] = collections.deque()
        self._sorted: list[float] = []
        #: Asks owed to the budget, ``acq`` above (before the current event's share).
        self.owed = 0.0

    @property
    def params(self) -> dict[str, float | int]:
        return {"window": self.window, "w_tol": self.w_tol, **super().params}

    def decide(self, score: float) -> Verdict:
        _check_score(score)
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
