"""Split: part of the budget on a uniform random sample, the rest on variable uncertainty
(Žliobaitė et al. 2014)."""

from __future__ import annotations

from typing import ClassVar

from activestream.decide.base import Verdict
from activestream.decide.budgeted import check_fraction, check_score
from activestream.decide.reasons import RANDOM
from activestream.decide.variable_uncertainty import VariableUncertainty

__all__ = ["Split", "split_ask_proba"]


def split_ask_proba(v: float, budget: float, uncertainty_part_asks: float) -> float | None:
    """A Split's ask probability: ``v·budget``, plus ``1 − v`` times the probability that its uncertainty
    part asks (``True``/``False`` when that part is deterministic); ``None`` with no random part (``v = 0``:
    the policy is deterministic).

    >>> split_ask_proba(0.2, 0.1, True), split_ask_proba(0.2, 0.1, False), split_ask_proba(0.0, 0.1, True)
    (0.82, 0.02, None)
    >>> round(split_ask_proba(0.2, 0.1, 0.1), 6)  # an uncertainty part that asks at random at the budget
    0.1
    """
    return v * budget + (1.0 - v) * uncertainty_part_asks if v > 0.0 else None


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
        self.v = check_fraction(v, "v", low_open=False)
        #: Whether the last event went to the random part (whether or not it was asked).
        self.last_was_random = False

    @property
    def params(self) -> dict[str, float | int]:
        return {**super().params, "v": self.v}

    def decide(self, score: float) -> Verdict:
        check_score(score)
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
