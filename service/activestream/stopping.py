"""Stopping criteria: signals that more labels no longer help, and an optional pause of label requests.

Three criteria, each a 0/1 signal (:data:`CRITERIA`, a bounded metric label):

- ``plateau`` — the unbiased accuracy estimate has stopped improving. Labels chosen for being
  informative are the hard cases and understate accuracy; two kinds of labels estimate it without
  bias: those asked at random (``Decision.reason == "random"``, :meth:`StoppingMonitor.on_random_label`)
  and, with a randomized policy, every label weighted by ``1/p``, its ask probability
  (``Decision.ask_proba``, :meth:`StoppingMonitor.on_weighted_label`; Hájek's self-normalised mean
  over a block). Over the last ``2m`` labels of one kind, the signal is on when the accuracy of the last
  ``m`` is not better than that of the ``m`` before by more than ``ε``: ``acc(last m) − acc(previous m)
  ≤ ε``. The kind follows the rule of every unbiased estimate
  (:func:`activestream.drift.estimates.unbiased_source`): the random labels once there are ``m`` of
  them, else the weighted ones once there are ``m``. A deterministic policy without a random part
  (``ask_proba`` ``None``) feeds neither: no unbiased estimate exists, and the signal stays off.
- ``stable_predictions`` — the model's predictions have stabilised (Bloodgood & Vijay-Shanker 2009): a
  held set of recent unlabeled events (at most ``stability_size``, admitted with probability
  ``stability_sample``) is predicted every ``stability_every`` learned labels; the signal is on when
  Cohen's kappa between the predictions of two successive checks, averaged over the last
  ``stability_patience`` checks, reaches ``stability_threshold``. Each check compares the current model
  with the previous check's model *on the same items*; only then is the set refreshed (its oldest items
  replaced by up to ``stability_refresh`` of the most recent candidates), so it follows the stream while
  every comparison stays like for like.
- ``max_labels`` — an absolute cap on label requests: on once ``max_labels`` requests were made.

Pausing. With ``pause_on_signal`` (the service's ``stop_on_plateau``), the first ``plateau`` or
``stable_predictions`` signal pauses label requests. While paused, requests whose reason is ``random``
still go out: they cost ``v·budget`` only, keep the unbiased estimate alive (and feed a drift detector),
and let the monitor notice a fall: when ``acc(last m)`` drops more than ``resume_drop`` below the
accuracy at which it paused, it resumes by itself. ``resume()`` is the hook a drift detector calls. The
``max_labels`` cap is not a pause: nothing (not even a random request) is asked beyond it, and
``resume()`` does not lift it. While paused, the requests that go out were not asked with the policy's
probability (the pause held the others back), so the service does not weight them: a policy without a
random part asks nothing at all while paused, and only ``resume()`` ends its pause.

Pure: no clock; randomness from ``seed``; the model comes in as a ``predict`` function.

References
----------
Bloodgood, M. and Vijay-Shanker, K. (2009). A method for stopping active learning based on stabilizing
predictions and the need for user-adjustable stopping. CoNLL 2009, 39-47.

Examples
--------
>>> monitor = StoppingMonitor(plateau_window=3, plateau_epsilon=0.0, pause_on_signal=True)
>>> for correct in (False, True, False, True, True, True):  # 1/3 then 3/3: still improving
...     monitor.on_random_label(correct)
>>> monitor.signals["plateau"], monitor.paused
(False, False)
>>> for correct in (True, True, True):  # 3/3 then 3/3: no improvement
...     monitor.on_random_label(correct)
>>> monitor.signals["plateau"], monitor.paused, monitor.allows("informative"), monitor.allows("random")
(True, True, False, True)
>>> monitor.resume()
>>> monitor.paused, monitor.signals["plateau"]
(False, False)

Without a random part, the labels weighted by their ask probability (Hájek) give the estimate:

>>> weighted = StoppingMonitor(plateau_window=2, plateau_epsilon=0.0)
>>> for correct, p in [(False, 0.5), (True, 1.0), (True, 0.5), (True, 0.25)]:
...     weighted.on_weighted_label(correct, ask_proba=p)
>>> weighted.estimate_source, round(weighted.recent_accuracy, 2), weighted.signals["plateau"]
('ipw', 1.0, False)

The label cap:

>>> capped = StoppingMonitor(max_labels=2)
>>> capped.on_ask(); capped.on_ask()
>>> capped.signals["max_labels"], capped.allows("random")
(True, False)
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from typing import Final

from activestream.decide.policies import RANDOM
from activestream.drift.estimates import UnbiasedSource, unbiased_source
from activestream.types import Features

__all__ = ["CRITERIA", "MAX_LABELS", "PLATEAU", "STABLE_PREDICTIONS", "StoppingMonitor", "cohen_kappa"]

PLATEAU: Final = "plateau"
STABLE_PREDICTIONS: Final = "stable_predictions"
MAX_LABELS: Final = "max_labels"
#: Every criterion (a metric label: the set is small and fixed).
CRITERIA: Final = (PLATEAU, STABLE_PREDICTIONS, MAX_LABELS)


def cohen_kappa(a: list[Hashable], b: list[Hashable]) -> float:
    """Cohen's kappa between two equally long label lists (``1.0`` when both are identical).

    With both lists constant the chance agreement is 1 and kappa is undefined: we return 1 when they
    agree everywhere and 0 otherwise.

    >>> cohen_kappa([1, 1, 0, 0], [1, 1, 0, 0])
    1.0
    >>> cohen_kappa([1, 1, 0, 0], [1, 0, 1, 0])
    0.0
    >>> cohen_kappa([], [])
    1.0
    """
    if len(a) != len(b):
        raise ValueError("kappa needs two lists of the same length")
    n = len(a)
    if n == 0:
        return 1.0
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if expected >= 1.0:
        return 1.0 if observed >= 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


class StoppingMonitor:
    """The stopping signals and the pause of label requests (see the module docstring).

    Parameters
    ----------
    plateau_window
        ``m``: labels per block of the plateau comparison (random labels, or weighted ones without
        enough of those).
    plateau_epsilon
        ``ε``: an improvement of more than this, between two blocks, is still an improvement.
    stability_size
        Most events in the held set of the stabilising-predictions criterion.
    stability_sample
        Probability that an event becomes a candidate for the held set.
    stability_every
        Learned labels between two prediction checks.
    stability_threshold
        Mean kappa of successive checks at which predictions count as stable.
    stability_patience
        Checks the mean kappa is taken over.
    stability_refresh
        Most held items replaced by recent candidates after each check (default ``stability_size // 10``).
    max_labels
        Cap on label requests (``None``: no cap).
    pause_on_signal
        Pause label requests (all but random ones) at the first plateau or stable-predictions signal.
    resume_drop
        While paused, resume by itself when the unbiased accuracy estimate falls more than this below
        its value at the pause (``None``: only ``resume()`` resumes).
    seed
        Seeds the admission of events into the held set.
    """

    def __init__(
        self,
        *,
        plateau_window: int = 100,
        plateau_epsilon: float = 0.01,
        stability_size: int = 200,
        stability_sample: float = 0.1,
        stability_every: int = 25,
        stability_threshold: float = 0.99,
        stability_patience: int = 3,
        stability_refresh: int | None = None,
        max_labels: int | None = None,
        pause_on_signal: bool = False,
        resume_drop: float | None = 0.05,
        seed: int | None = None,
    ) -> None:
        for name, value in (
            ("plateau_window", plateau_window),
            ("stability_size", stability_size),
            ("stability_every", stability_every),
            ("stability_patience", stability_patience),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if max_labels is not None and max_labels < 0:
            raise ValueError(f"max_labels must be >= 0 or None, got {max_labels!r}")
        if not 0.0 < stability_sample <= 1.0:
            raise ValueError(f"stability_sample must be in (0, 1], got {stability_sample!r}")
        self.plateau_window = plateau_window
        self.plateau_epsilon = float(plateau_epsilon)
        self.stability_size = stability_size
        self.stability_sample = float(stability_sample)
        self.stability_every = stability_every
        self.stability_threshold = float(stability_threshold)
        self.stability_patience = stability_patience
        self.stability_refresh = (
            max(1, stability_size // 10) if stability_refresh is None else stability_refresh
        )
        self.max_labels = max_labels
        self.pause_on_signal = pause_on_signal
        self.resume_drop = resume_drop
        self._rng = random.Random(seed)
        self._random_outcomes: deque[bool] = deque(maxlen=2 * plateau_window)
        # (correct, weight 1/ask_proba) of the labels whose ask probability is known.
        self._weighted_outcomes: deque[tuple[bool, float]] = deque(maxlen=2 * plateau_window)
        self._candidates: deque[Features] = deque(maxlen=stability_size)
        self._held: list[Features] = []
        self._held_predictions: list[Hashable] = []
        self._kappas: deque[float] = deque(maxlen=stability_patience)
        self._last_check_version: int | None = None
        #: Label requests counted against ``max_labels``.
        self.asked = 0
        #: Why the requests are paused (a criterion), or ``None``.
        self.paused_by: str | None = None
        self._accuracy_at_pause: float | None = None
        #: Times the monitor paused, and resumed (by ``resume()`` or by itself).
        self.pauses = 0
        self.resumes = 0

    # -- inputs -----------------------------------------------------------------------------------------
    def on_ask(self) -> None:
        """A label request was made (counts against ``max_labels``)."""
        self.asked += 1

    def on_random_label(self, correct: bool) -> None:
        """A label asked at random arrived; ``correct``: the prediction made when it was asked was right."""
        self.on_label(correct, unbiased=True)

    def on_weighted_label(self, correct: bool, ask_proba: float) -> None:
        """A label asked with the known probability ``ask_proba`` (in ``(0, 1]``) arrived; ``correct`` as in
        :meth:`on_random_label`."""
        self.on_label(correct, ask_proba=ask_proba)

    def on_label(self, correct: bool, *, unbiased: bool = False, ask_proba: float | None = None) -> None:
        """A label arrived: it feeds the random sample when it was asked at random (``unbiased``), the
        weighted one when its ask probability is known (both for a random ask with a known probability),
        and nothing otherwise (a deterministic policy's label is no sample of the stream)."""
        if ask_proba is not None and not 0.0 < ask_proba <= 1.0:
            raise ValueError(f"ask_proba must be in (0, 1], got {ask_proba!r}")
        if unbiased:
            self._random_outcomes.append(bool(correct))
        if ask_proba is not None:
            self._weighted_outcomes.append((bool(correct), 1.0 / ask_proba))
        if not unbiased and ask_proba is None:
            return
        if self.paused_by is not None and self.resume_drop is not None:
            recent = self.recent_accuracy
            if self._accuracy_at_pause is None:  # paused before m unbiased labels: the first estimate
                self._accuracy_at_pause = recent
            elif recent is not None and recent < self._accuracy_at_pause - self.resume_drop:
                self.resume()
                return
        self._maybe_pause(PLATEAU)

    def observe(self, x: Features) -> None:
        """An event went by: it may become a candidate for the stabilising-predictions held set."""
        if self._rng.random() < self.stability_sample:
            self._candidates.append(x)

    def check_stability(
        self, model_version: int, predict: Callable[[Sequence[Features]], Sequence[Hashable]]
    ) -> float | None:
        """Compare predictions when ``stability_every`` labels were learned since the last check.

        ``predict`` gives the model's predictions of several events at once (e.g. scored on a matrix). The
        items kept in the held set are predicted once per check: the current model's predictions of them
        serve both this comparison and the next.
        Returns the kappa of this check against the previous one, or ``None`` when nothing was compared.
        """
        last = self._last_check_version
        if last is not None and model_version - last < self.stability_every:
            return None
        self._last_check_version = model_version
        current = list(predict(self._held)) if self._held else []
        kappa = None
        if self._held:
            kappa = cohen_kappa(self._held_predictions, current)
            self._kappas.append(kappa)
        fresh = self._refresh()
        self._held_predictions = (
            (current + list(predict(fresh)))[-self.stability_size :] if fresh else current
        )
        if kappa is not None:
            self._maybe_pause(STABLE_PREDICTIONS)
        return kappa

    def resume(self) -> None:
        """Resume label requests (the drift hook): clears the pause and the evidence behind the signals."""
        if self.paused_by is not None:
            self.resumes += 1
        self.paused_by = None
        self._accuracy_at_pause = None
        self._random_outcomes.clear()
        self._weighted_outcomes.clear()
        self._kappas.clear()

    # -- outputs ----------------------------------------------------------------------------------------
    @property
    def estimate_source(self) -> UnbiasedSource | None:
        """Which labels the estimates come from: ``"unbiased"`` (random), ``"ipw"`` (weighted) or ``None``
        (fewer than ``m`` of either since the start or the last resume)."""
        counts = {"unbiased": len(self._random_outcomes), "ipw": len(self._weighted_outcomes)}
        return unbiased_source(counts, self.plateau_window)

    @property
    def recent_accuracy(self) -> float | None:
        """Accuracy of the last ``m`` labels of :attr:`estimate_source` (``None`` before ``m``)."""
        blocks = self._blocks()
        return blocks[-1] if blocks else None

    @property
    def signals(self) -> dict[str, bool]:
        """Each criterion's signal."""
        return {
            PLATEAU: self._plateau(),
            STABLE_PREDICTIONS: self._stable(),
            MAX_LABELS: self.max_labels is not None and self.asked >= self.max_labels,
        }

    @property
    def exhausted(self) -> bool:
        """The label cap was reached."""
        return self.max_labels is not None and self.asked >= self.max_labels

    @property
    def paused(self) -> bool:
        """Label requests are paused (by a signal) or capped."""
        return self.paused_by is not None or self.exhausted

    def allows(self, reason: str) -> bool:
        """Whether a request the policy decided with this ``reason`` may go out."""
        if self.exhausted:
            return False
        return self.paused_by is None or reason == RANDOM

    # -- internals --------------------------------------------------------------------------------------
    def _blocks(self) -> list[float]:
        """The accuracies of the full blocks of ``m`` labels of the estimate source, oldest first (0-2)."""
        m, source = self.plateau_window, self.estimate_source
        if source is None:
            return []
        if source == "unbiased":
            weighted = [(correct, 1.0) for correct in self._random_outcomes]
        else:
            weighted = list(self._weighted_outcomes)
        weighted = weighted[len(weighted) % m :]  # whole blocks, the most recent ones
        blocks = []
        for start in range(0, len(weighted), m):
            block = weighted[start : start + m]
            blocks.append(sum(w for correct, w in block if correct) / sum(w for _, w in block))
        return blocks

    def _plateau(self) -> bool:
        blocks = self._blocks()
        if len(blocks) < 2:
            return False
        previous, recent = blocks
        return recent - previous <= self.plateau_epsilon

    def _stable(self) -> bool:
        if len(self._kappas) < self.stability_patience:
            return False
        return sum(self._kappas) / len(self._kappas) >= self.stability_threshold

    def _maybe_pause(self, criterion: str) -> None:
        if not self.pause_on_signal or self.paused_by is not None:
            return
        if (criterion == PLATEAU and self._plateau()) or (criterion == STABLE_PREDICTIONS and self._stable()):
            self.paused_by = criterion
            self._accuracy_at_pause = self.recent_accuracy
            self.pauses += 1

    def _refresh(self) -> list[Features]:
        """Replace the oldest held items by the most recent candidates; returns those added."""
        room = self.stability_size - len(self._held)
        take = min(len(self._candidates), max(room, self.stability_refresh))
        fresh = [self._candidates.pop() for _ in range(take)][::-1]  # the most recent ones, in order
        self._held = (self._held + fresh)[-self.stability_size :]
        return fresh
