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

**One rule for every unbiased estimate** (:func:`unbiased_source`; the arms' champion here, the metric
``activestream_prequential_accuracy`` and the stopping criteria's plateau follow it): the random sample
when it holds enough labels, else inverse-probability weighting when *it* does, else none. The random
sample comes first when both exist because it is exact and assumes nothing: a plain mean, whatever the
policy reports, while the Hájek estimate is only consistent, its variance grows with the spread of the
weights ``1/p``, and it is only as right as the probabilities the policy reports. Policies without a
random share (Randomized variable uncertainty, selective sampling) get their estimate from IPW; a
deterministic policy (``ask_proba`` ``None``, no random share) has none: its asks are no sample of the
stream, and only the biased ``"all"`` remains, which the arms use as a last resort and the metric and
the stopping criteria never do.

>>> acc = RecentAccuracy(window=10)
>>> for correct, random_ask in [(True, True), (False, False), (True, True), (False, False)]:
...     acc.update(correct, unbiased=random_ask)
>>> acc.get("unbiased"), round(acc.get("all"), 2), acc.get("ipw")
(1.0, 0.47, None)
>>> choose_source(acc, min_samples=2)
'unbiased'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

__all__ = [
    "DEFAULT_MIN_SAMPLES",
    "SOURCES",
    "UNBIASED_SOURCES",
    "RecentAccuracy",
    "Source",
    "UnbiasedSource",
    "choose_source",
    "unbiased_source",
    "weighting_proba",
]

Source = Literal["unbiased", "ipw", "all"]
UnbiasedSource = Literal["unbiased", "ipw"]
#: Estimate sources, from least to most biased.
SOURCES: Final[tuple[Source, ...]] = ("unbiased", "ipw", "all")
#: The sources without selection bias, in the order :func:`unbiased_source` prefers them.
UNBIASED_SOURCES: Final[tuple[UnbiasedSource, ...]] = ("unbiased", "ipw")
#: Labels a source needs before it is preferred to the next one (the arms' ``min_estimate`` default).
DEFAULT_MIN_SAMPLES: Final = 30


def weighting_proba(ask_proba: float | None) -> float | None:
    """``ask_proba`` when it can weight an asked label (a probability in ``(0, 1]``), else ``None``.

    Where a label's ask probability enters the service's pending store or the prequential evaluation:
    a value no asked label can have (0, NaN, beyond 1: a policy's bug) drops the label from the
    weighted estimate instead of failing its learning.

    >>> weighting_proba(0.25), weighting_proba(None), weighting_proba(0.0), weighting_proba(float("nan"))
    (0.25, None, None, None)
    """
    if ask_proba is None or not 0.0 < ask_proba <= 1.0:
        return None
    return float(ask_proba)


def unbiased_source(counts: Mapping[str, int], min_samples: int) -> UnbiasedSource | None:
    """The rule every unbiased estimate follows: the random sample (``"unbiased"``) when it counts at
    least ``min_samples`` labels, else inverse-probability weighting (``"ipw"``) when it does, else
    ``None`` (no unbiased estimate yet; never with a deterministic policy and no random share).

    ``counts`` are the labels each source holds (e.g. :attr:`RecentAccuracy.counts`). What a user does
    when neither source has enough is its own: the arms compare on ``"all"`` (:func:`choose_source`);
    the metric ``activestream_prequential_accuracy`` takes the first source with any label (the same
    order with ``min_samples=1``), NaN without; the plateau criterion waits (``min_samples`` is its
    block).

    >>> unbiased_source({"unbiased": 3, "ipw": 40}, min_samples=30)
    'ipw'
    >>> unbiased_source({"unbiased": 30, "ipw": 400}, min_samples=30)
    'unbiased'
    >>> unbiased_source({"unbiased": 0, "ipw": 0}, min_samples=1) is None
    True
    """
    for source in UNBIASED_SOURCES:
        if counts.get(source, 0) >= min_samples:
            return source
    return None


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


def choose_source(accuracy: RecentAccuracy, min_samples: int = DEFAULT_MIN_SAMPLES) -> Source:
    """The least biased source with at least ``min_samples`` samples (:func:`unbiased_source`); ``"all"``
    as the last resort.

    Every arm of a :class:`~activestream.drift.adaptive.DriftAdaptiveClassifier` sees the same labels,
    so the source chosen from one arm's counts is valid for all of them, and they are compared on it.

    >>> acc = RecentAccuracy()
    >>> acc.update(True, ask_proba=0.5)
    >>> choose_source(acc, min_samples=1), choose_source(acc, min_samples=2)
    ('ipw', 'all')
    """
    return unbiased_source(accuracy.counts, min_samples) or "all"
