"""Recent accuracy of a model, estimated from the labels an active learner gets.

The labels an uncertainty-driven learner asks for are the *hard* cases — events near the decision
boundary — so a model's accuracy on them underestimates its accuracy on the stream, by an amount that
depends on the model and on how the threshold moves. Three estimators, from least to most biased:

``"unbiased"``
    Accuracy on the labels asked **at random** (the random part of the Split policy, ``reason ==
    "random"``; ``learn_one(x, y, unbiased=True)``). A uniform sample of the stream: unbiased, but thin
    (at a 5 % budget with a 20 % random share, one event in a hundred).
``"ipw"``
    Inverse-probability weighting (Horvitz & Thompson 1952) of every label whose ask probability ``p``
    is known: each label counts ``1/p`` and the weighted mean is self-normalised (Hájek), which trades a
    little bias for much less variance. Unbiased only if *every* label carries its ``p``.
``"all"``
    Plain accuracy on every label. Always available; biased **downwards** (hard cases), and not by the
    same amount for two models, so comparisons on it favour the model whose mistakes the uncertainty
    measure does not notice.

:func:`choose_source` picks the first one with enough samples. All three are exponentially weighted
over about ``window`` of *their own* samples and bias-corrected at the start (like Adam's moments), so
they read as the accuracy over the last ``window`` samples of that kind.

>>> acc = RecentAccuracy(window=10)
>>> for correct, random_ask in [(True, True), (False, False), (True, True), (False, False)]:
...     acc.update(correct, unbiased=random_ask)
>>> acc.get("unbiased"), round(acc.get("all"), 2), acc.get("ipw")
(1.0, 0.47, None)
>>> choose_source(acc, min_samples=2)
'unbiased'
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["SOURCES", "RecentAccuracy", "Source", "choose_source"]

Source = Literal["unbiased", "ipw", "all"]
#: Estimate sources, from least to most biased.
SOURCES: Final[tuple[Source, ...]] = ("unbiased", "ipw", "all")


class _Fading:
    """Exponentially weighted mean of weighted observations, bias-corrected at the start."""

    __slots__ = ("_decay", "_norm", "_sum", "n")

    def __init__(self, decay: float) -> None:
        self._decay = decay
        self._sum = 0.0
        self._norm = 0.0
        self.n = 0

    def update(self, value: float, weight: float = 1.0) -> None:
        self._sum = self._sum * self._decay + weight * value
        self._norm = self._norm * self._decay + weight
        self.n += 1

    def get(self) -> float | None:
        return self._sum / self._norm if self.n else None


class RecentAccuracy:
    """Recent prequential accuracy of one model, from three label sources.

    Parameters
    ----------
    window
        Effective window of each estimate, in samples of its own kind (the fading factor is
        ``(window − 1)/window``).

    Examples
    --------
    Inverse-probability weighting: a correct answer on an event asked with probability 0.1 stands for
    ten events, a wrong one asked with probability 1 for one.

    >>> acc = RecentAccuracy(window=1000)
    >>> acc.update(True, ask_proba=0.1)
    >>> acc.update(False, ask_proba=1.0)
    >>> round(acc.get("ipw"), 3), acc.get("all")
    (0.909, 0.5)
    >>> acc.counts
    {'unbiased': 0, 'ipw': 2, 'all': 2}

    """

    def __init__(self, window: int = 100) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise ValueError(f"window must be an int >= 2 samples, got {window!r}")
        self.window = window
        decay = (window - 1) / window
        self._by_source = {source: _Fading(decay) for source in SOURCES}

    def update(self, correct: bool, *, unbiased: bool = False, ask_proba: float | None = None) -> None:
        """Account for one labeled example the model was tested on before learning it.

        Parameters
        ----------
        correct
            Whether the model's prediction (made before learning the label) was right.
        unbiased
            The label was asked at random, independently of the model (Split's random part).
        ask_proba
            The probability with which this label was asked, if the policy knows it.
        """
        value = 1.0 if correct else 0.0
        self._by_source["all"].update(value)
        if unbiased:
            self._by_source["unbiased"].update(value)
        if ask_proba is not None:
            if not 0.0 < ask_proba <= 1.0:
                raise ValueError(f"ask_proba must be in (0, 1], got {ask_proba!r}")
            self._by_source["ipw"].update(value, 1.0 / ask_proba)

    def get(self, source: Source = "all") -> float | None:
        """The estimate from ``source``, or ``None`` before its first sample."""
        return self._by_source[source].get()

    @property
    def counts(self) -> dict[str, int]:
        """Samples seen per source."""
        return {source: fading.n for source, fading in self._by_source.items()}

    def __repr__(self) -> str:
        values = ", ".join(f"{s}={self.get(s)!r}" for s in SOURCES)
        return f"RecentAccuracy(window={self.window}, {values})"


def choose_source(accuracy: RecentAccuracy, min_samples: int = 30) -> Source:
    """The least biased source with at least ``min_samples`` samples; ``"all"`` as the last resort.

    Every arm of a :class:`~activestream.drift.adaptive.DriftAdaptiveClassifier` sees the same labels,
    so the source chosen from one arm's counts is valid for all of them, and they are compared on it.

    >>> acc = RecentAccuracy()
    >>> acc.update(True, ask_proba=0.5)
    >>> choose_source(acc, min_samples=1), choose_source(acc, min_samples=2)
    ('ipw', 'all')
    """
    counts = accuracy.counts
    for source in SOURCES[:-1]:
        if counts[source] >= min_samples:
            return source
    return "all"
