"""A temporary labeling-budget boost after a drift: more labels while the model relearns.

Right after a drift the model is wrong where it is confident, so its uncertainty scores point to the
wrong events, and a reset model needs labels fast. :class:`BudgetBoost` wraps any
:class:`~activestream.decide.base.Policy`: after :meth:`BudgetBoost.trigger` (call it on a detected drift
or a label-free alarm) it multiplies the asking rate by ``factor`` for the next ``duration`` events, then
returns to the base budget.

The extra labels are asked **at random**, independently of the score, with the probability that brings
the total rate to ``factor × budget``: the base policy still spends its budget on the informative events,
and the boost adds a uniform sample of the stream — exactly what a reset model, the accuracy estimates
and the detectors need after a drift (uncertainty sampling would keep asking where the *old* concept was
uncertain). Those asks carry ``reason == "random"``, so they count as unbiased labels.

**Ask probability.** During a boost an event is asked when the base policy asks it *or* the independent
extra draw fires, so with the base policy's probability ``p`` and the extra rate ``q`` the boosted
policy asks it with probability ``p + (1 − p)·q = 1 − (1 − p)(1 − q)``, and that is the verdict's
``ask_proba``, whichever of the two asked (or neither). ``p`` is the base verdict's ``ask_proba`` when
the base policy is randomized; a deterministic base policy (``ask_proba`` ``None``) asks with
probability 1 or 0 given its state, which its ``ask`` says, so a boosted event is asked with
probability 1 or ``q``: every boosted verdict carries its probability, even over a deterministic
policy, and the boost's labels weight without bias for the boosted events. Outside a boost the base
verdict passes through untouched (``None`` stays ``None``).

The base policy sees every event and its budget estimator counts only its own asks, so it is not pushed
into saving the boost back afterwards: a boost *costs* about ``(factor − 1) × budget × duration`` extra
labels per trigger (re-triggering during a boost restarts the countdown, it does not stack).

**Off by default**: nothing in the service wraps a policy in it unless configured. In
``benchmarks/drift_suite.py`` (×2 for n/20 events after each detected drift, 5% budget) it helped after
STAGGER's abrupt drifts (served accuracy +0.8 and +1.3 points) but not after Agrawal's gradual ones
(0 and +0.3 overall, worse right after the drifts), for 0.1–0.7 more points of labels, and changed
nothing where no drift was detected: mixed, so it stays off unless drifts are known to be abrupt.

>>> from activestream.decide.base import Policy, Verdict
>>> class Never(Policy):
...     name = "never"
...     budget = 0.1
...     spending = 0.0
...     def decide(self, score):
...         return Verdict(False, 1.0, "below_threshold")
>>> policy = BudgetBoost(Never(), factor=3.0, duration=1000, seed=1)
>>> sum(policy.decide(0.5).ask for _ in range(1000))
0
>>> policy.trigger()
>>> verdicts = [policy.decide(0.5) for _ in range(1000)]
>>> asked = [v for v in verdicts if v.ask]
>>> len(asked), {v.reason for v in asked}, policy.boosting
(216, {'random'}, False)
>>> {round(v.ask_proba, 3) for v in verdicts}  # the extra rate: the base policy never asks
{0.222}
>>> policy.decide(0.5).ask_proba is None  # the boost is over: the deterministic base's None
True
"""

from __future__ import annotations

import random

from activestream.decide.base import Policy, Verdict
from activestream.decide.budget import WindowedBudget
from activestream.decide.policies import RANDOM

__all__ = ["BudgetBoost"]


class BudgetBoost(Policy):
    """Multiply a policy's asking rate by ``factor`` for ``duration`` events after each trigger.

    Parameters
    ----------
    policy
        The base policy; it decides every event, boosted or not.
    factor
        The asking rate during a boost, as a multiple of the base budget (``> 1``; the rate is capped
        at every event).
    duration
        Events a boost lasts.
    seed
        Seeds the random extra asks.
    budget_window
        Window of the estimator behind ``spending`` (base and extra asks together).

    Examples
    --------
    >>> from activestream.decide.base import Policy, Verdict
    >>> class Always(Policy):
    ...     name = "always"
    ...     budget = 0.2
    ...     spending = 0.2
    ...     def decide(self, score):
    ...         return Verdict(True, 0.0, "informative")
    >>> policy = BudgetBoost(Always(), factor=2.0, duration=10)
    >>> policy.name, policy.budget, policy.extra_rate
    ('always+boost', 0.2, 0.25)
    >>> policy.trigger()
    >>> policy.boosting, policy.remaining, policy.n_triggers
    (True, 10, 1)

    """

    def __init__(
        self,
        policy: Policy,
        factor: float = 2.0,
        duration: int = 1000,
        seed: int | None = None,
        budget_window: int = 1000,
    ) -> None:
        if not factor > 1.0:
            raise ValueError(f"factor must be > 1 (a boost), got {factor!r}")
        if isinstance(duration, bool) or not isinstance(duration, int) or duration < 1:
            raise ValueError(f"duration must be an int >= 1 events, got {duration!r}")
        self.policy = policy
        self.factor = float(factor)
        self.duration = duration
        self.seed = seed
        self.budget = policy.budget
        # Asking each event at random with probability q on top of a base rate b gives b + (1 − b)·q;
        # solve for a total of factor·b.
        base = policy.budget
        self.extra_rate = 1.0 if base >= 1.0 else min(1.0, (self.factor - 1.0) * base / (1.0 - base))
        # Derived from the seed so that a base policy given the same seed does not draw the same numbers
        # (string seeds are hashed with SHA-512: stable across runs and platforms).
        self._rng = random.Random(None if seed is None else f"budget-boost/{seed}")
        self._estimator = WindowedBudget(1.0, budget_window)
        #: Events left in the current boost (0: not boosting), and boosts started.
        self.remaining = 0
        self.n_triggers = 0

    @property
    def name(self) -> str:  # type: ignore[override]
        """The base policy's name with ``+boost``: still a small, bounded set of metric labels."""
        return f"{self.policy.name}+boost"

    @property
    def boosting(self) -> bool:
        """Whether the next event falls in a boost."""
        return self.remaining > 0

    @property
    def spending(self) -> float:
        """Windowed fraction of events asked, base and extra asks together."""
        return self._estimator.spending

    def trigger(self) -> None:
        """Start a boost of ``duration`` events (or restart the current one)."""
        self.remaining = self.duration
        self.n_triggers += 1

    def decide(self, score: float) -> Verdict:
        verdict = self.policy.decide(score)
        base_ask = verdict.ask
        if self.remaining > 0:
            self.remaining -= 1
            # Asked by the base policy or by an independent extra draw (see the module docstring).
            base = verdict.ask_proba
            if base is None:
                base = 1.0 if verdict.ask else 0.0
            ask_proba = base + (1.0 - base) * self.extra_rate
            # Drawn for every boosted event, whatever the base verdict, so that the events asked at
            # random are a uniform sample of the stream (drawing only among the events the base policy
            # turned down would sample the easy ones).
            if self._rng.random() < self.extra_rate:
                verdict = Verdict(True, verdict.threshold, RANDOM, ask_proba)
            else:
                verdict = Verdict(verdict.ask, verdict.threshold, verdict.reason, ask_proba)
        self._estimator.record(verdict.ask)
        self._last_base_ask = base_ask
        return verdict

    def overrule(self, decided: bool, asked: bool) -> None:
        """Count ``asked`` for the last event; the base policy is told too when it made the verdict (an
        extra ask is the boost's own)."""
        self._estimator.amend(decided, asked)
        base_ask = getattr(self, "_last_base_ask", None)  # (a boost pickled before it existed: None)
        if base_ask == decided:
            self.policy.overrule(decided, asked)

    def __repr__(self) -> str:
        return (
            f"BudgetBoost(policy={self.policy!r}, factor={self.factor!r}, duration={self.duration!r}, "
            f"seed={self.seed!r})"
        )
