"""The contract every threshold policy follows."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar


# Not frozen: a frozen dataclass's __init__ costs 4-5x a plain one's, and one is made per event (treat as
# immutable; ``dataclasses.replace`` makes a changed copy).
@dataclass(slots=True)
class Verdict:
    """A policy's answer for one event.

    ``reason`` is one of a small fixed set of values (it becomes a metric label), e.g. ``"informative"``,
    ``"random"``, ``"below_threshold"``, ``"over_budget"``, ``"cold_start"``.

    ``ask_proba`` is the probability, given the policy's state before this event, that an event with
    this score is asked: the policy's randomness is the only random thing about it. It is what inverse
    probability weighting needs (:mod:`activestream.drift.estimates`), so a randomized policy reports it
    on every verdict; a deterministic one (asks with probability 0 or 1) reports ``None``: its asks are
    no sample of the stream, and no weighting makes them one.
    """

    ask: bool
    threshold: float
    reason: str
    ask_proba: float | None = field(default=None, repr=False, compare=False)


class Policy(abc.ABC):
    """Turns informativeness scores into ask/discard decisions while keeping spending on budget.

    Contract:

    - ``decide(score)`` is called once per event, in stream order, with a score in ``[0, 1]`` (or
      ``decide_many`` once for a run of events); an ask counts against the budget at once (labels asked
      but not answered yet are already spent, so label delay cannot cause overspending).
    - Over a long stream the fraction of events asked stays close to ``budget``.
    - Deterministic given ``seed``.
    - ``spending`` is the current windowed estimate of the fraction of events asked.
    """

    #: Short, bounded name used in decisions, label requests and metric labels.
    name: ClassVar[str]
    budget: float

    @abc.abstractmethod
    def decide(self, score: float) -> Verdict:
        """Decide whether to ask for the label of an event with this informativeness score."""

    def decide_many(self, scores: Sequence[float]) -> list[Verdict | Exception]:
        """``decide`` of each score in turn, in order: for a run of events whose scores are all known
        before the first is decided (nothing between two decisions changes the policy's state).

        A score that ``decide`` refuses gives the exception it raised in its place, and the next scores
        are decided as they would have been. A policy may override this with a faster loop; it must leave
        the same verdicts and the same state as the default.
        """
        verdicts: list[Verdict | Exception] = []
        for score in scores:
            try:
                verdicts.append(self.decide(score))
            except Exception as error:
                verdicts.append(error)
        return verdicts

    def overrule(self, decided: bool, asked: bool) -> None:  # noqa: B027 - a hook; most need nothing
        """The last ``decide`` said ``decided``, but ``asked`` is what happened (a replay gives back the
        decision made before a restart): account for that, so that spending counts what was asked.

        Called right after that ``decide``, before the next one. The default does nothing.
        """

    @property
    @abc.abstractmethod
    def spending(self) -> float:
        """Windowed estimate of the fraction of recent events that were asked."""
