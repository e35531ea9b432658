"""The streams used by the tests, the demo and the benchmarks, with their known drift positions.

Synthetic streams come from river's generators and need no download. Electricity (``elec``) is read from
a CSV path when one is given or found (``ACTIVESTREAM_ELEC_CSV``, then ``../shared/datasets/elec.csv``
beside the project), and otherwise from river's ``Elec2`` loader, which downloads the original.

Feature names are strings everywhere, as they are on the wire.

>>> stream = sea_abrupt(n=1000, seed=1)
>>> stream.name, stream.n, stream.drifts
('sea_abrupt', 1000, (250, 500, 750))
>>> x, y = next(iter(stream))
>>> sorted(x), type(y).__name__
(['0', '1', '2'], 'bool')
"""

from __future__ import annotations

import csv
import itertools
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from river.datasets import base as river_base
from river.datasets import synth

from activestream.types import ClassLabel, Features

__all__ = ["STREAMS", "Stream", "elec", "find_elec_csv", "make_stream"]

Example = tuple[Features, ClassLabel]


@dataclass(frozen=True)
class Stream:
    """A finite, replayable stream: iterating it twice yields the same examples."""

    name: str
    n: int
    drifts: tuple[int, ...]
    source: Callable[[], Iterable[Example]]

    def __iter__(self) -> Iterator[Example]:
        for x, y in itertools.islice(self.source(), self.n):
            yield {str(k): v for k, v in x.items()}, y


def _concept_chain(
    concepts: list[river_base.SyntheticDataset], n: int, width: int, seed: int
) -> Iterable[Example]:
    """Concepts one after another at equal spacing: switched exactly (``width`` 1) or gradually."""
    step = n // len(concepts)
    if width <= 1:
        return _abrupt_chain(concepts, step)
    # river's ConceptDriftStream computes exp(4·(position − t)/width), which overflows a float when
    # position/width > ~177: a gradual change is at least that wide.
    width = max(width, math.ceil(4 * step / 700))
    chained = concepts[-1]
    for i in range(len(concepts) - 2, -1, -1):
        # A nested stream only advances once drawn from, so each position counts from the previous drift.
        chained = synth.ConceptDriftStream(concepts[i], chained, position=step, width=width, seed=seed + i)
    return chained


def _abrupt_chain(concepts: list[river_base.SyntheticDataset], step: int) -> Iterator[Example]:
    for concept in concepts[:-1]:
        yield from itertools.islice(concept, step)
    yield from concepts[-1]


def sea_abrupt(n: int = 100_000, seed: int = 1, noise: float = 0.1) -> Stream:
    """SEA concepts 0 → 1 → 2 → 3 with abrupt drifts at n/4, n/2, 3n/4 (Street & Kim 2001)."""

    def source() -> Iterable[Example]:
        concepts = [synth.SEA(variant=v, noise=noise, seed=seed + v) for v in range(4)]
        return _concept_chain(concepts, n, width=1, seed=seed)

    return Stream("sea_abrupt", n, _drift_points(n, 4), source)


def agrawal_gradual(n: int = 100_000, seed: int = 1) -> Stream:
    """Agrawal functions 0 → 2 → 4 → 6, each change gradual over n/20 events (Agrawal et al. 1993)."""

    def source() -> Iterable[Example]:
        concepts = [synth.Agrawal(classification_function=f, seed=seed + f) for f in (0, 2, 4, 6)]
        return _concept_chain(concepts, n, width=max(1, n // 20), seed=seed)

    return Stream("agrawal_gradual", n, _drift_points(n, 4), source)


def hyperplane(n: int = 100_000, seed: int = 1) -> Stream:
    """A rotating hyperplane: incremental drift on every event (Hulten et al. 2001)."""

    def source() -> Iterable[Example]:
        return synth.Hyperplane(seed=seed, n_features=10, n_drift_features=2, mag_change=0.001)

    return Stream("hyperplane", n, (), source)


def rbf_drift(n: int = 100_000, seed: int = 1) -> Stream:
    """Random RBF with moving centroids: incremental drift in the input distribution."""

    def source() -> Iterable[Example]:
        return synth.RandomRBFDrift(
            seed_model=seed, seed_sample=seed, n_classes=2, n_features=10, change_speed=0.0001
        )

    return Stream("rbf_drift", n, (), source)


def stagger_recurring(n: int = 100_000, seed: int = 1) -> Stream:
    """STAGGER functions 0 → 1 → 2 → 0: abrupt drifts, the first concept recurs (Schlimmer & Granger 1986)."""

    def source() -> Iterable[Example]:
        functions = (0, 1, 2, 0)
        concepts = [synth.STAGGER(classification_function=f, seed=seed + i) for i, f in enumerate(functions)]
        return _concept_chain(concepts, n, width=1, seed=seed)

    return Stream("stagger_recurring", n, _drift_points(n, 4), source)


def _drift_points(n: int, n_concepts: int) -> tuple[int, ...]:
    step = n // n_concepts
    return tuple(step * (i + 1) for i in range(n_concepts - 1))


ELEC_COLUMNS = ("period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer")


def find_elec_csv() -> Path | None:
    """The Electricity CSV: ``$ACTIVESTREAM_ELEC_CSV``, else ``shared/datasets/elec.csv`` beside the repo."""
    candidates = [os.environ.get("ACTIVESTREAM_ELEC_CSV")]
    repo = Path(__file__).resolve().parents[2]
    candidates += [str(repo.parent / "shared" / "datasets" / "elec.csv"), "../shared/datasets/elec.csv"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def elec(path: str | Path | None = None, n: int | None = None) -> Stream:
    """Electricity (NSW market, Harries 1999): 45,312 events, label 1 when the price went up.

    Reads ``path``, or the CSV ``find_elec_csv`` finds, or falls back to river's ``Elec2`` (a download);
    either way the features are the six of the shared CSV (``date`` and ``day`` dropped).
    """
    csv_path = Path(path) if path is not None else find_elec_csv()
    total = 45_312

    def from_csv() -> Iterable[Example]:
        with open(csv_path, newline="") as f:
            for row in csv.DictReader(f):
                yield {c: float(row[c]) for c in ELEC_COLUMNS}, int(float(row["class"]))

    def from_river() -> Iterable[Example]:
        from river import datasets

        for x, y in datasets.Elec2():
            yield {c: float(x[c]) for c in ELEC_COLUMNS}, int(y in (True, "UP", 1, "1"))

    return Stream("elec", min(n or total, total), (), from_csv if csv_path else from_river)


#: Stream factories by name: ``make_stream(name, n=..., seed=...)``.
STREAMS: dict[str, Callable[..., Stream]] = {
    "sea_abrupt": sea_abrupt,
    "agrawal_gradual": agrawal_gradual,
    "hyperplane": hyperplane,
    "rbf_drift": rbf_drift,
    "stagger_recurring": stagger_recurring,
}


def make_stream(name: str, n: int | None = None, seed: int = 1) -> Stream:
    """A stream by name; ``elec`` ignores ``seed``.

    >>> make_stream("stagger_recurring", n=400).drifts
    (100, 200, 300)
    """
    if name == "elec":
        return elec(n=n)
    if name not in STREAMS:
        raise ValueError(f"unknown stream {name!r}; choose one of: elec, {', '.join(sorted(STREAMS))}")
    return STREAMS[name](n=n or 100_000, seed=seed)
