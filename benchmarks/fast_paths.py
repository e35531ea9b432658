"""Fast paths against their references: the same decisions, and how much time they save.

Three computations have a fast path beside the plain one they replace:

- **density**: ``DensityWeighted`` compares an event with its memory on a matrix while the memory holds one
  numeric schema; the reference forces the per-feature path (``squared_distance`` for each remembered
  event) on every event.
- **committee**: the default members are ``models.GaussianNB`` (probabilities from
  ``models.naive_bayes_proba``: scipy's ``logsumexp`` arithmetic on floats); the reference's are river's.
- **served gnb**: ``models.GaussianNB`` (the ``gnb`` model) against river's ``naive_bayes.GaussianNB``.

For each stream, one learner of each kind decides every event and learns the labels it asks for (budget
10%, Split, seed 1), as the service does; the two decision sequences are compared ask for ask, the scores
to the last bit that differs, and ``decide`` is timed per event (``perf_counter_ns``, median).

    PYTHONPATH=service python benchmarks/fast_paths.py            # 3,000 events a stream: fast_paths.md
    PYTHONPATH=service python benchmarks/fast_paths.py --quick    # 300 events a stream: fast_paths_quick.md
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import river
from river import datasets, naive_bayes
from river.datasets import synth

from activestream.decide import make_policy
from activestream.learner import ActiveLearner
from activestream.models import GaussianNB, make_model
from activestream.score.base import Measure
from activestream.score.density import DensityWeighted
from activestream.score.registry import make_measure
from annotation_report import machine

RESULTS = Path(__file__).resolve().parent / "results"
BUDGET, SEED, FULL_N, QUICK_N = 0.1, 1, 3000, 300

Stream = Callable[[], Iterator[tuple[dict, Any]]]

STREAMS: dict[str, Stream] = {
    "sea": lambda: iter(synth.SEA(seed=SEED)),
    "agrawal": lambda: iter(synth.Agrawal(seed=SEED)),
    "hyperplane": lambda: iter(synth.Hyperplane(seed=SEED, n_features=10)),
    "rbf_5_classes": lambda: iter(synth.RandomRBFDrift(seed_model=SEED, seed_sample=SEED, n_classes=5)),
    "phishing": lambda: iter(datasets.Phishing()),
    "imagesegments": lambda: iter(datasets.ImageSegments()),
}


class PerFeatureDensity(DensityWeighted):
    """The reference: every event takes the per-feature path."""

    def _matrix_similarity(self, row: Any) -> float | None:
        return None


@dataclass(frozen=True)
class Check:
    """One fast path against its reference on one model × measure."""

    path: str
    model: str
    measure: str
    fast: Callable[[], ActiveLearner]
    reference: Callable[[], ActiveLearner]


def _learner(model: Any, measure: Measure) -> ActiveLearner:
    return ActiveLearner(
        model, measure=measure, policy=make_policy("split", BUDGET, seed=SEED), budget=BUDGET, seed=SEED
    )


def checks() -> list[Check]:
    """The fast paths and their references, each on the learners and measures that use it."""
    found = []
    for model in ("logreg", "gnb"):
        found.append(
            Check(
                "density",
                model,
                "density(margin)",
                lambda model=model: _learner(
                    make_model(model, SEED), DensityWeighted(make_measure("margin", seed=SEED))
                ),
                lambda model=model: _learner(
                    make_model(model, SEED), PerFeatureDensity(make_measure("margin", seed=SEED))
                ),
            )
        )
    for measure in ("qbc_vote_entropy", "qbc_kl"):
        found.append(
            Check(
                "committee",
                "gnb",
                measure,
                lambda measure=measure: _learner(GaussianNB(), make_measure(measure, seed=SEED)),
                lambda measure=measure: _learner(
                    naive_bayes.GaussianNB(), make_measure(measure, seed=SEED, base=naive_bayes.GaussianNB())
                ),
            )
        )
    for measure in ("margin", "entropy"):
        found.append(
            Check(
                "served gnb",
                "gnb",
                measure,
                lambda measure=measure: _learner(GaussianNB(), make_measure(measure, seed=SEED)),
                lambda measure=measure: _learner(naive_bayes.GaussianNB(), make_measure(measure, seed=SEED)),
            )
        )
    return found


def run(learner: ActiveLearner, stream: Stream, n: int) -> tuple[list[tuple[bool, float]], float]:
    """``(ask, score)`` per event, and the median ``decide`` µs."""
    decided, timings = [], []
    for x, y in itertools.islice(stream(), n):
        started = time.perf_counter_ns()
        decision = learner.decide(x)
        timings.append(time.perf_counter_ns() - started)
        decided.append((decision.ask, decision.score))
        if decision.ask:
            learner.learn_one(x, y)
    return decided, statistics.median(timings) / 1000


def compare(check: Check, stream_name: str, n: int) -> dict[str, Any]:
    stream = STREAMS[stream_name]
    fast, fast_us = run(check.fast(), stream, n)
    reference, reference_us = run(check.reference(), stream, n)
    return {
        "path": check.path,
        "stream": stream_name,
        "model": check.model,
        "measure": check.measure,
        "events": len(fast),
        "asks": sum(ask for ask, _ in reference),
        "same_asks": [a for a, _ in fast] == [a for a, _ in reference],
        "max_score_diff": max(abs(f - r) for (_, f), (_, r) in zip(fast, reference, strict=True)),
        "reference_us": reference_us,
        "fast_us": fast_us,
    }


def applies(check: Check, stream_name: str) -> bool:
    # The default logistic regression is binary: the multi-class streams go to Gaussian NB only.
    binary = stream_name in ("sea", "agrawal", "hyperplane", "phishing")
    return check.model != "logreg" or binary


def report(rows: list[dict[str, Any]], seconds: float, n: int, load_before: float) -> str:
    same = sum(r["same_asks"] for r in rows)
    lines = [
        "# Fast paths against their references",
        "",
        f"Generated by `benchmarks/fast_paths.py` on {datetime.date.today()} in {seconds:.0f} s "
        f"(up to {n:,} events a stream, budget {BUDGET:.0%}, Split, seed {SEED}); see its docstring. "
        f"Machine: {machine()}, river {river.__version__}; 1-minute load {load_before:.2f} when it started.",
        "",
        f"**{same} of {len(rows)} runs decide identically** (every ask the same); the largest score "
        f"difference is {max(r['max_score_diff'] for r in rows):.1e}. decide µs are per-event medians, "
        "wall clock on a shared machine.",
        "",
        "| fast path | stream | model | measure | events | asks | same asks | max score diff "
        "| decide µs reference | decide µs fast | × |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['path']} | {r['stream']} | {r['model']} | {r['measure']} | {r['events']:,} | {r['asks']} "
            f"| {'yes' if r['same_asks'] else '**no**'} | {r['max_score_diff']:.1e} "
            f"| {r['reference_us']:.1f} | {r['fast_us']:.1f} | {r['reference_us'] / r['fast_us']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=FULL_N, help="events per stream")
    parser.add_argument("--quick", action="store_true", help="300 events a stream: the make bench smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the markdown")
    args = parser.parse_args(argv)
    if args.quick:
        args.n = QUICK_N
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    rows = []
    for check in checks():
        for stream_name in STREAMS:
            if applies(check, stream_name):
                rows.append(compare(check, stream_name, args.n))
                print(rows[-1], flush=True)
    text = report(rows, time.perf_counter() - started, args.n, load_before)
    stem = "fast_paths" if args.n >= FULL_N else "fast_paths_quick"
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{stem}.md"
    path.write_text(text)
    print(text.split("\n\n")[2])
    print(f"wrote {path}", file=sys.stderr)
    return 0 if all(r["same_asks"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
