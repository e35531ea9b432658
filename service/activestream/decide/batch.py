"""Batch mode: hold a window of events, then ask for the most informative *diverse* few of them.

Per-event policies decide at once, so a burst of near-identical uncertain events (the same customer,
the same sensor glitch, a cluster right on the decision boundary) is asked about again and again: each
one looks informative on its own. In batch mode the service holds a window of events and, when it
closes, asks for ``k`` of them, chosen greedily for informativeness penalised by similarity to what was
already chosen in the window.

Budget. A window of ``w`` events earns ``k = B·w`` asks (``B = budget``: the same labels per event as
per-event mode); the fractional part of ``B·w`` is carried to the next window, so over a long stream
exactly ``B`` of the events are asked, and never more (an ask is made only when a whole credit is
there).

Windows close when they hold ``window`` events, or — with ``span_ms`` — when the first event held is
``span_ms`` old (time comes in as an argument: ``offer(..., now_ms=)`` and ``tick(now_ms)``).

Selection (``method="penalized"``, the default). With ``s_i`` the informativeness of event ``i`` and
``S`` the events chosen so far in the window, the next pick maximises

    ``gain_i = s_i · (1 − max_{j∈S} sim(i, j))^λ``      (``max`` over an empty ``S`` is ``0``)

where ``λ = diversity`` (``λ = 0`` is plain top-``k`` by score). Ties go to the earlier event.
``method="kcenter"`` is greedy k-center on the ``pool_factor·k`` most informative events: the most
informative first, then always the one farthest (largest minimum distance) from those chosen.

Similarity. ``sim(i, j) = exp(−γ · d²(i, j))``, where ``d²`` is the mean over the window's features of
the squared difference of *window-standardised* values (z-scores over the events held in the window);
a string feature that differs, or a feature only one of the two events has, counts ``2`` — the
expected squared difference of two independent standardised values — so two unrelated events score
about ``e^{−2γ}`` and identical ones ``1``. Standardising per window keeps the selector free of
long-lived state: a restarted service that replays the held events rebuilds the same window.

``random_share = v`` keeps an unbiased sample in batch mode: each of the ``k`` slots is, with
probability ``v``, a uniform draw among the window's events (reason ``"random"``; drawn first, so the
draw does not depend on the scores); the other slots are filled as above (reason ``"informative"``).

Deterministic: same seed, same offers, same choices.

Examples
--------
Three near-duplicates (``a``, ``b``, ``c``) are the most informative, ``d`` is far away. Top-``k``
asks for two of the duplicates; the diversity penalty asks for one duplicate and ``d``:

>>> window = [("a", {"x": 0.0}, 0.9), ("b", {"x": 0.01}, 0.88), ("c", {"x": 0.02}, 0.87),
...           ("d", {"x": 5.0}, 0.6), ("e", {"x": 2.0}, 0.1)]
>>> top_k = BatchSelector(budget=0.4, window=5, diversity=0.0)
>>> [top_k.offer(i, x, s) for i, x, s in window]
[[], [], [], [], ['a', 'b']]
>>> diverse = BatchSelector(budget=0.4, window=5, diversity=1.0)
>>> [diverse.offer(i, x, s) for i, x, s in window][-1]
['a', 'd']
>>> [(p.event_id, round(p.gain, 3), p.reason) for p in diverse.last_picks]
[('a', 0.9, 'informative'), ('d', 0.6, 'informative')]

A partial window is decided by ``flush()`` (or by ``tick(now_ms)`` once ``span_ms`` has passed):

>>> timed = BatchSelector(budget=0.5, window=100, span_ms=1000)
>>> timed.offer("p", {"x": 1.0}, 0.5, now_ms=0), timed.offer("q", {"x": 9.0}, 0.7, now_ms=400)
([], [])
>>> timed.tick(now_ms=999), timed.tick(now_ms=1000)
([], ['q'])
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from activestream.decide.budget import check_budget, check_window
from activestream.decide.policies import BELOW_THRESHOLD, INFORMATIVE, RANDOM
from activestream.types import Features

__all__ = [
    "METHODS",
    "BatchSelector",
    "Pick",
    "WindowGeometry",
    "mean_pairwise_similarity",
    "select",
]

Method = Literal["penalized", "kcenter"]
#: The selection methods ``BatchSelector`` takes.
METHODS: Final = ("penalized", "kcenter")
#: Squared standardised difference charged for a differing string or a missing feature (see above).
MISMATCH: Final = 2.0
# Guards floor(credit) against 0.1 + 0.2 style rounding: 0.9999999 credits are one credit.
_EPS: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Pick:
    """One event chosen from a window, in choice order.

    ``gain`` is its penalised informativeness when it was chosen (its score for a random pick) and
    ``max_similarity`` its largest similarity to the events chosen before it (0 for the first).
    """

    event_id: str
    score: float
    gain: float
    max_similarity: float
    reason: str


class WindowGeometry:
    """Window-standardised distances and similarities between the events of one window.

    Parameters
    ----------
    xs
        The window's events; standardisation uses all of them.
    gamma
        ``γ`` in ``sim = exp(−γ·d²)``.

    Examples
    --------
    >>> geometry = WindowGeometry([{"x": 0.0, "c": "a"}, {"x": 0.0, "c": "a"}, {"x": 2.0, "c": "b"}])
    >>> geometry.similarity(0, 1), round(geometry.similarity(0, 2), 4)
    (1.0, 0.0388)
    """

    def __init__(self, xs: Sequence[Features], gamma: float = 1.0) -> None:
        if not (gamma > 0.0 and math.isfinite(gamma)):
            raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
        self.gamma = float(gamma)
        self.n = len(xs)
        numeric: list[str] = sorted({k for x in xs for k, v in x.items() if not isinstance(v, str)})
        categorical: list[str] = sorted({k for x in xs for k, v in x.items() if isinstance(v, str)})
        self._n_features = max(1, len(numeric) + len(categorical))
        z = np.full((self.n, len(numeric)), np.nan)
        for i, x in enumerate(xs):
            for j, key in enumerate(numeric):
                value = x.get(key)
                if value is not None and not isinstance(value, str):
                    z[i, j] = float(value)
        if self.n and numeric:
            with warnings.catch_warnings():
                # An all-missing column warns "mean of empty slice"; its NaN scale is replaced below.
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(z, axis=0)
                std = np.nanstd(z, axis=0)
            # A constant (or single-valued) feature tells no events apart: scale 1 keeps its zeros.
            std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
            z = (z - mean) / std
        self._z = z
        self._cat = [tuple(x.get(k) if isinstance(x.get(k), str) else None for k in categorical) for x in xs]
        self._has_cat = bool(categorical)

    def squared_distances(self, i: int) -> np.ndarray:
        """``d²(i, j)`` for every ``j`` in the window."""
        diff = self._z - self._z[i]
        # Missing on one side: a mismatch; missing on both sides: no difference (an event is itself).
        both_missing = np.isnan(self._z) & np.isnan(self._z[i])
        sq = np.where(both_missing, 0.0, np.where(np.isnan(diff), MISMATCH, diff * diff)).sum(axis=1)
        if self._has_cat:
            mine = self._cat[i]
            sq = sq + np.array(
                [sum(MISMATCH for a, b in zip(mine, other, strict=True) if a != b) for other in self._cat]
            )
        return sq / self._n_features

    def similarities(self, i: int) -> np.ndarray:
        """``sim(i, j)`` for every ``j`` in the window."""
        return np.exp(-self.gamma * self.squared_distances(i))

    def similarity(self, i: int, j: int) -> float:
        return float(self.similarities(i)[j])


def mean_pairwise_similarity(geometry: WindowGeometry, indices: Sequence[int]) -> float | None:
    """Mean ``sim`` over the pairs of ``indices`` (the redundancy of what was asked), ``None`` below 2.

    >>> geometry = WindowGeometry([{"x": 0.0}, {"x": 0.0}, {"x": 1.0}])
    >>> mean_pairwise_similarity(geometry, [0, 1])
    1.0
    >>> mean_pairwise_similarity(geometry, [2]) is None
    True
    """
    if len(indices) < 2:
        return None
    total, pairs = 0.0, 0
    for a, i in enumerate(indices[:-1]):
        sims = geometry.similarities(i)
        for j in indices[a + 1 :]:
            total += float(sims[j])
            pairs += 1
    return total / pairs


def select(
    scores: Sequence[float],
    geometry: WindowGeometry,
    k: int,
    *,
    diversity: float = 1.0,
    method: Method = "penalized",
    pool_factor: float = 3.0,
    preselected: Sequence[int] = (),
) -> list[tuple[int, float, float]]:
    """Greedily choose ``k`` indices (see the module docstring); ``(index, gain, max_similarity)`` each.

    ``preselected`` (e.g. random picks) count as chosen for the penalty but are not returned.

    >>> geometry = WindowGeometry([{"x": 0.0}, {"x": 0.1}, {"x": 3.0}])
    >>> [i for i, _, _ in select([0.9, 0.8, 0.5], geometry, 2, diversity=0.0)]
    [0, 1]
    >>> [i for i, _, _ in select([0.9, 0.8, 0.5], geometry, 2, method="kcenter")]
    [0, 2]
    """
    n = len(scores)
    k = min(k, n - len(preselected))
    if k <= 0:
        return []
    s = np.asarray(scores, dtype=float)
    chosen = np.zeros(n, dtype=bool)
    max_sim = np.zeros(n)
    for i in preselected:
        chosen[i] = True
        max_sim = np.maximum(max_sim, geometry.similarities(i))
    picks: list[tuple[int, float, float]] = []
    if method == "penalized":
        for _ in range(k):
            gain = s * np.power(np.clip(1.0 - max_sim, 0.0, 1.0), diversity)
            gain[chosen] = -np.inf
            best = int(np.argmax(gain))  # argmax returns the first maximum: ties go to the earlier event
            picks.append((best, float(gain[best]), float(max_sim[best])))
            chosen[best] = True
            max_sim = np.maximum(max_sim, geometry.similarities(best))
        return picks
    if method != "kcenter":
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    # Stable sort on -score: equal scores keep stream order.
    pool_size = min(n, max(k, math.ceil(pool_factor * k)))
    pool = [int(i) for i in np.argsort(-s, kind="stable") if not chosen[i]][:pool_size]
    min_d2 = np.full(n, np.inf)
    for i in preselected:
        min_d2 = np.minimum(min_d2, geometry.squared_distances(i))
    for step in range(min(k, len(pool))):
        # The most informative first; then the farthest from the chosen set (among equals, the more
        # informative, then the earlier).
        first = step == 0 and not preselected
        best = pool[0] if first else max(pool, key=lambda i: (min_d2[i], s[i], -i))
        sim = math.exp(-geometry.gamma * min_d2[best]) if math.isfinite(min_d2[best]) else 0.0
        picks.append((best, float(s[best]), sim))
        pool.remove(best)
        min_d2 = np.minimum(min_d2, geometry.squared_distances(best))
    return picks


class BatchSelector:
    """Holds a window of events and picks the ones to ask about when it closes (see the module docstring).

    Parameters
    ----------
    budget
        Fraction of events whose label may be asked, in ``(0, 1]``.
    window
        The window closes when it holds this many events.
    span_ms
        The window also closes when its first event is this old (``None``: by size only).
    diversity
        ``λ ≥ 0``, the exponent of the similarity penalty (``0``: plain top-``k``).
    method
        ``"penalized"`` (informativeness × dissimilarity) or ``"kcenter"``.
    gamma
        ``γ`` of the similarity ``exp(−γ·d²)``.
    pool_factor
        k-center draws from the ``pool_factor·k`` most informative events.
    random_share
        Probability in ``[0, 1]`` that a slot goes to a uniformly random event (an unbiased sample).
    seed
        Seeds the random slots.
    """

    def __init__(
        self,
        budget: float,
        window: int = 100,
        *,
        span_ms: int | None = None,
        diversity: float = 1.0,
        method: Method = "penalized",
        gamma: float = 1.0,
        pool_factor: float = 3.0,
        random_share: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.budget = check_budget(budget)
        self.window = check_window(window)
        if span_ms is not None and span_ms < 1:
            raise ValueError(f"span_ms must be >= 1 or None, got {span_ms!r}")
        if not (diversity >= 0.0 and math.isfinite(diversity)):
            raise ValueError(f"diversity must be a finite number >= 0, got {diversity!r}")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
        if not 0.0 <= random_share <= 1.0:
            raise ValueError(f"random_share must be in [0, 1], got {random_share!r}")
        if not pool_factor >= 1.0:
            raise ValueError(f"pool_factor must be >= 1, got {pool_factor!r}")
        WindowGeometry([], gamma)  # validates gamma
        self.span_ms = span_ms
        self.diversity = float(diversity)
        self.method: Method = method
        self.gamma = float(gamma)
        self.pool_factor = float(pool_factor)
        self.random_share = float(random_share)
        self.seed = seed
        self._rng = random.Random(seed)
        self._ids: list[str] = []
        self._xs: list[Features] = []
        self._scores: list[float] = []
        self._opened_ms: int | None = None
        #: Asks earned but not spent yet (below one: the fraction carried to the next window).
        self.credit = 0.0
        #: The picks of the last window decided, in choice order.
        self.last_picks: tuple[Pick, ...] = ()
        #: The ids of every event of the last window decided, in arrival order.
        self.last_window: tuple[str, ...] = ()
        #: The smallest gain picked in the last window (the window's effective threshold; 1 if none).
        self.threshold = 1.0

    def __len__(self) -> int:
        """Events held in the open window."""
        return len(self._ids)

    @property
    def held(self) -> tuple[str, ...]:
        """The ids of the events held in the open window, in arrival order."""
        return tuple(self._ids)

    def offer(self, event_id: str, x: Features, score: float, now_ms: int | None = None) -> list[str]:
        """Hold one event; when this closes the window, return the ids to ask about (else ``[]``)."""
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score must be an informativeness in [0, 1], got {score!r}")
        if self.span_ms is not None and now_ms is not None and self._expired(now_ms):
            # The window's time is up already: it closes without this event, which opens the next.
            closed = self._close()
            self._hold(event_id, x, score, now_ms)
            return closed
        self._hold(event_id, x, score, now_ms)
        if len(self._ids) >= self.window:
            return self._close()
        return []

    def tick(self, now_ms: int) -> list[str]:
        """Close the window if its ``span_ms`` has passed at ``now_ms``; the ids to ask (else ``[]``)."""
        if self._ids and self.span_ms is not None and self._expired(now_ms):
            return self._close()
        return []

    def flush(self) -> list[str]:
        """Close the window now, whatever its size; the ids to ask about."""
        return self._close() if self._ids else []

    def remove(self, event_ids: Iterable[str]) -> None:
        """Forget held events (e.g. of partitions another consumer takes over): they will not be decided."""
        gone = set(event_ids)
        keep = [i for i, event_id in enumerate(self._ids) if event_id not in gone]
        self._ids = [self._ids[i] for i in keep]
        self._xs = [self._xs[i] for i in keep]
        self._scores = [self._scores[i] for i in keep]
        if not self._ids:
            self._opened_ms = None

    def reason_for(self, event_id: str) -> str:
        """The reason of an event of the last window: ``informative``, ``random`` or ``below_threshold``."""
        for pick in self.last_picks:
            if pick.event_id == event_id:
                return pick.reason
        return BELOW_THRESHOLD

    # -- internals --------------------------------------------------------------------------------------
    def _hold(self, event_id: str, x: Features, score: float, now_ms: int | None) -> None:
        if not self._ids:
            self._opened_ms = now_ms
        self._ids.append(event_id)
        self._xs.append(x)
        self._scores.append(float(score))

    def _expired(self, now_ms: int) -> bool:
        assert self.span_ms is not None
        return self._opened_ms is not None and now_ms - self._opened_ms >= self.span_ms

    def _close(self) -> list[str]:
        ids, xs, scores = self._ids, self._xs, self._scores
        self._ids, self._xs, self._scores, self._opened_ms = [], [], [], None
        self.credit += self.budget * len(ids)
        k = min(math.floor(self.credit + _EPS), len(ids))
        self.credit = max(0.0, self.credit - k)
        picks: list[Pick] = []
        if k:
            geometry = WindowGeometry(xs, self.gamma)
            # Random slots first, drawn from the whole window: an unbiased sample of it.
            n_random = sum(self._rng.random() < self.random_share for _ in range(k))
            randoms = self._rng.sample(range(len(ids)), n_random) if n_random else []
            for i in randoms:
                picks.append(Pick(ids[i], scores[i], scores[i], 0.0, RANDOM))
            chosen = select(
                scores,
                geometry,
                k - n_random,
                diversity=self.diversity,
                method=self.method,
                pool_factor=self.pool_factor,
                preselected=randoms,
            )
            picks += [Pick(ids[i], scores[i], gain, sim, INFORMATIVE) for i, gain, sim in chosen]
        self.last_picks = tuple(picks)
        self.last_window = tuple(ids)
        informative = [p.gain for p in picks if p.reason == INFORMATIVE]
        self.threshold = min(informative) if informative else 1.0
        return [p.event_id for p in picks]

    def __repr__(self) -> str:
        return (
            f"BatchSelector(budget={self.budget!r}, window={self.window!r}, span_ms={self.span_ms!r}, "
            f"diversity={self.diversity!r}, method={self.method!r}, held={len(self)})"
        )
