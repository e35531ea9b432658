"""A drift signal that needs no labels: a change detector on the informativeness scores of all events.

Every event is scored (``Decision.score``) whether or not its label is asked, so the score stream is
available at once, for every event, long before any label arrives. A change in its distribution means
the events now fall elsewhere relative to the model — more of them near the decision boundary or in
regions it has not seen (a change of the inputs, *virtual* drift), or fewer.

What it cannot see (Ditzler et al. 2015, on unsupervised detection): a change of the concept alone,
``P(y | x)``, with the same inputs — the model's scores do not move (SEA's or Agrawal's concept changes
look like nothing here). And it sees changes of the *model*: the scores move while a young model
learns (use ``grace``) and whenever the model is replaced or reset, e.g. after a label-based drift.
So it is an early, cheap hint — e.g. to boost the labeling budget (:mod:`activestream.drift.boost`)
and let the label-based detectors confirm — not a drift detector in its own right.

>>> import random
>>> rng = random.Random(7)
>>> signal = LabelFreeDriftSignal()
>>> scores = [rng.uniform(0.0, 0.3) for _ in range(2000)] + [rng.uniform(0.4, 0.9) for _ in range(2000)]
>>> alarms = [i for i, score in enumerate(scores) if signal.update(score)]
>>> signal.n_alarms, 2000 <= alarms[0] < 2100
(1, True)
"""

from __future__ import annotations

import collections
from typing import Any

from river import base

from activestream.drift.detectors import DEFAULT_DETECTOR, detector_name, make_detector

__all__ = ["LabelFreeDriftSignal"]


class LabelFreeDriftSignal:
    """A real-valued drift detector (ADWIN by default) on the scores of all events.

    Parameters
    ----------
    detector
        A name for :func:`~activestream.drift.detectors.make_detector` or a river detector instance.
        Scores are real numbers in ``[0, 1]``, so it must be one of the real-valued detectors
        (``"adwin"``, ``"page_hinkley"``, ``"kswin"``); the binary error detectors are refused.
        Page–Hinkley's default ``threshold=50`` suits large magnitudes; on scores it needs about ``1``.
    seed
        Seeds the detector (KSWIN only).
    grace
        Alarms during the first ``grace`` events are not raised (the detector still learns from them):
        a model learning its first labels makes its scores fall, which is not a drift of the stream.
    history
        How many alarm positions are remembered.
    params
        Passed to the detector when it is given by name.

    Examples
    --------
    >>> signal = LabelFreeDriftSignal("page_hinkley", threshold=1.0, grace=100)
    >>> [signal.update(0.1) for _ in range(500)].count(True)
    0
    >>> any(signal.update(0.8) for _ in range(50))
    True
    >>> signal.n_alarms, signal.alarm_positions[0] > 500
    (1, True)
    >>> LabelFreeDriftSignal("ddm")
    Traceback (most recent call last):
    ...
    ValueError: the label-free signal needs a real-valued detector (adwin, page_hinkley, kswin), got 'ddm'

    """

    def __init__(
        self,
        detector: str | base.Base = DEFAULT_DETECTOR,
        seed: int | None = None,
        *,
        grace: int = 0,
        history: int = 1000,
        **params: Any,
    ) -> None:
        instance = make_detector(detector, seed=seed, **params) if isinstance(detector, str) else detector
        if isinstance(instance, base.BinaryDriftDetector):
            raise ValueError(
                "the label-free signal needs a real-valued detector (adwin, page_hinkley, kswin), "
                f"got {detector_name(instance)!r}"
            )
        self.detector = instance
        self.grace = grace
        #: Events seen and alarms raised.
        self.n_events = 0
        self.n_alarms = 0
        #: Event numbers (1-based) of the latest alarms.
        self.alarm_positions: collections.deque[int] = collections.deque(maxlen=history)

    def update(self, score: float) -> bool:
        """Feed one event's informativeness score; return whether this event raises an alarm."""
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score must be an informativeness in [0, 1], got {score!r}")
        self.n_events += 1
        self.detector.update(score)
        if not self.detector.drift_detected or self.n_events <= self.grace:
            return False
        self.n_alarms += 1
        self.alarm_positions.append(self.n_events)
        return True

    def __repr__(self) -> str:
        return (
            f"LabelFreeDriftSignal(detector={detector_name(self.detector)!r}, n_events={self.n_events}, "
            f"n_alarms={self.n_alarms})"
        )
