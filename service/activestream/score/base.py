"""The contract every informativeness measure follows."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from activestream.types import ClassLabel, Features, Proba


class Measure(abc.ABC):
    """How much a label for one event would teach the model, as a number in ``[0, 1]``.

    Contract:

    - ``score`` returns a float in ``[0, 1]``; higher means more informative.
    - An empty or one-class ``proba`` (a model that has seen no or one class: the cold start) gives
      ``1.0``: an untrained model must still get labels. ``is_cold`` says when that applies (measures
      with models of their own, such as a committee, widen it).
    - Deterministic given the constructor's ``seed`` and the sequence of calls.
    - ``score`` may update internal state that depends only on the unlabeled stream (e.g. the recent-event
      memory of density weighting); ``learn_one`` receives the labeled examples the model learns from,
      for measures that keep models of their own (a committee).
    - ``model`` is the classifier being served; only measures that read its parameters use it.
    """

    #: Short, bounded name used in decisions, label requests and metric labels.
    name: ClassVar[str]

    @abc.abstractmethod
    def score(self, x: Features, proba: Proba, model: Any = None) -> float:
        """Informativeness of ``x`` given the model's class probabilities ``proba``."""

    def is_cold(self, x: Features, proba: Proba) -> bool:
        """Whether ``x`` is scored as a cold start (``1.0``): by default, ``proba`` knows < 2 classes."""
        from activestream.score.uncertainty import is_cold_start  # uncertainty builds on this module

        return is_cold_start(proba)

    def learn_one(self, x: Features, y: ClassLabel) -> None:  # noqa: B027 - optional hook
        """Learn from one labeled example (no-op unless the measure keeps its own models)."""
