"""Noisy annotators: what aggregating several labels per request buys, at equal requests and equal effort.

Protocol: prequential, activestream's default learner (``margin/split`` on ``--model``, default
``logreg``) at budget ``B = 10%``; labels arrive at once. Each label request goes to
``r`` annotators drawn at random (without replacement) from a pool of five; an annotator with error rate
``e`` answers the true class with probability ``1 − e`` and otherwise a uniformly random other class.
The ``r`` answers are aggregated by :class:`activestream.aggregate.LabelAggregator` (majority vote with
the documented tie rule, or the agreement-weighted vote) and the model learns the consensus, once.

Pools: every annotator at ``e = 0.1``, ``0.2`` or ``0.3``, and a mixed pool ``{0.05, 0.1, 0.2, 0.3,
0.4}`` (where weighting can tell the good from the bad).

Methods:

- ``oracle``: true labels (the ceiling);
- ``r=1``: one annotator per request (no aggregation);
- ``r=3 majority`` / ``r=3 weighted`` and ``r=5 majority`` / ``r=5 weighted``: the same requests
  (budget ``B``), 3 or 5 times the annotator effort;
- ``r=3 majority, B/3``: budget ``B/3``, so the annotator effort equals ``r=1``'s: fewer but cleaner
  labels.

Measured: prequential accuracy over every event, the error rate of the labels the model learned, label
requests and annotations (% of events). Streams: ``sea_abrupt`` and ``rbf_drift``; full mode 20,000
events and seeds 1-3, ``--quick`` 5,000 events and seed 1.

Outputs: ``benchmarks/results/noisy_oracle.md`` and ``noisy_oracle.png``; ``--quick`` writes
``noisy_oracle_quick.*``.

    PYTHONPATH=service python benchmarks/noisy_oracle.py      # about 5 minutes
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from river import metrics

from activestream.aggregate import LabelAggregator
from activestream.datasets import make_stream
from activestream.learner import DEFAULT_MEASURE, DEFAULT_POLICY, make_learner
from annotation_report import base_parser, mean, output, pyplot, save_figure, write_report

STREAMS = ("sea_abrupt", "rbf_drift")
POOLS: dict[str, tuple[float, ...]] = {
    "e=0.1": (0.1,) * 5,
    "e=0.2": (0.2,) * 5,
    "e=0.3": (0.3,) * 5,
    "mixed 0.05-0.4": (0.05, 0.1, 0.2, 0.3, 0.4),
}
#: method -> (annotators per request r, weighted vote, budget factor)
METHODS: dict[str, tuple[int, bool, float]] = {
    "oracle": (0, False, 1.0),
    "r=1": (1, False, 1.0),
    "r=3 majority": (3, False, 1.0),
    "r=3 weighted": (3, True, 1.0),
    "r=5 majority": (5, False, 1.0),
    "r=5 weighted": (5, True, 1.0),
    "r=3 majority, B/3": (3, False, 1 / 3),
}


@dataclass(frozen=True)
class Run:
    stream: str
    pool: str
    method: str
    seed: int
    n: int
    requests: int
    annotations: int
    label_error: float
    accuracy: float


def run_one(
    data: Sequence, classes: list, pool: tuple[float, ...], method: str, budget: float, seed: int, model: str
) -> tuple:
    r, weighted, factor = METHODS[method]
    learner = make_learner(model, budget=budget * factor, seed=seed)
    aggregator = LabelAggregator(needed=max(r, 1), weighted=weighted)
    rng = random.Random(seed * 7919 + r)
    accuracy = metrics.Accuracy()
    requests = annotations = wrong = 0
    for n, (x, y) in enumerate(data):
        y_pred, ask = learner.predict_one(x)
        accuracy.update(y, y_pred)
        if not ask:
            continue
        requests += 1
        if r == 0:
            label = y
        else:
            for annotator in rng.sample(range(len(pool)), r):
                answer = y
                if rng.random() < pool[annotator]:
                    answer = rng.choice([c for c in classes if c != y])
                aggregator.add(str(n), f"a{annotator}", answer, now_ms=n)
            annotations += r
            label = aggregator.close(str(n)).label
        wrong += label != y
        learner.learn_one(x, label)
    return requests, annotations, wrong / requests if requests else 0.0, accuracy.get()


def _mean(values: Iterable[float]) -> float:
    return mean(values) or 0.0


def table(runs: list[Run]) -> list[str]:
    lines = []
    for stream in STREAMS:
        lines += [
            f"### {stream}",
            "",
            "Accuracy % (error rate of the learned labels %); requests and annotations in % of events.",
            "",
            "| method | requests % | annotations % | " + " | ".join(POOLS) + " |",
            "|---|---|---|" + "---|" * len(POOLS),
        ]
        for method in METHODS:
            cells = []
            group = [r for r in runs if (r.stream, r.method) == (stream, method)]
            if not group:
                continue
            for pool in POOLS:
                rs = [r for r in group if r.pool == pool]
                best = max(
                    _mean(r.accuracy for r in runs if (r.stream, r.pool, r.method) == (stream, pool, m))
                    for m in METHODS
                    if m != "oracle"
                )
                acc = _mean(r.accuracy for r in rs)
                text = f"{100 * acc:.1f}"
                if method != "oracle" and acc >= best - 1e-9:
                    text = f"**{text}**"
                cells.append(f"{text} ({100 * _mean(r.label_error for r in rs):.1f})")
            n = group[0].n
            lines.append(
                f"| {method} | {100 * _mean(r.requests for r in group) / n:.1f} "
                f"| {100 * _mean(r.annotations for r in group) / n:.1f} | " + " | ".join(cells) + " |"
            )
        lines.append("")
    return lines


def plot(runs: list[Run], out: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(STREAMS), figsize=(12, 4.2), sharey=False)
    pools = list(POOLS)
    for ax, stream in zip(axes, STREAMS, strict=True):
        for method in METHODS:
            ys = [
                100
                * _mean(r.accuracy for r in runs if (r.stream, r.pool, r.method) == (stream, pool, method))
                for pool in pools
            ]
            style = "--" if method == "oracle" else ("-." if "B/3" in method else "-")
            ax.plot(range(len(pools)), ys, style, marker="o", label=method)
        ax.set_xticks(range(len(pools)), pools)
        ax.set_title(f"{stream}: accuracy % by annotator pool")
    axes[-1].legend(fontsize=8)
    save_figure(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__, budget=0.1)
    args = parser.parse_args(argv)
    n, seeds = (5_000, [1]) if args.quick else (20_000, [1, 2, 3])
    started = time.perf_counter()
    runs: list[Run] = []
    for stream_name, seed in itertools.product(STREAMS, seeds):
        data = list(make_stream(stream_name, n=n, seed=seed))
        classes = sorted({y for _, y in data}, key=repr)
        for pool, method in itertools.product(POOLS, METHODS):
            if method == "oracle" and pool != next(iter(POOLS)):
                # The oracle ignores the pool: run once, report it in every column.
                oracle = next(
                    r for r in runs if (r.stream, r.seed, r.method) == (stream_name, seed, "oracle")
                )
                copied = (oracle.n, oracle.requests, oracle.annotations, oracle.label_error, oracle.accuracy)
                runs.append(Run(stream_name, pool, method, seed, *copied))
                continue
            result = run_one(data, classes, POOLS[pool], method, args.budget, seed, args.model)
            runs.append(Run(stream_name, pool, method, seed, len(data), *result))
        print(f"{stream_name} seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    seconds = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    plot(runs, output(args.out, "noisy_oracle", args.quick, ".png"))
    setup = (
        f"{n:,} events per stream, {DEFAULT_MEASURE}/{DEFAULT_POLICY}, budget {args.budget:.0%} of label "
        f"requests (B/3 for the equal-effort row), model {args.model}, seeds {seeds}, means over seeds; "
        "best non-oracle accuracy of a column in bold."
    )
    title = "Noisy annotators: aggregation at equal requests and equal effort"
    figure = "accuracy by annotator pool"
    path = write_report(args.out, "noisy_oracle", title, args.quick, seconds, setup, table(runs), figure)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
