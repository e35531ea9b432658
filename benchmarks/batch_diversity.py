"""Batch mode with diversity against per-event selection, at equal budget.

Protocol: prequential (every event first tests the model, then a strategy decides whether to ask for its
label). Every method drives the same base learner (``--model``, default ``logreg``) and the same
informativeness measure (activestream's default, ``margin``); they differ in how they pick the events to
ask about:

- ``per-event``: activestream's default per-event policy (``split``: a fifth of the budget at random, the
  rest by variable uncertainty) at budget ``B``; a label is learned as soon as it is asked (no delay: the
  most favourable case for per-event);
- ``per-event, delay w/2``: the same, with each label arriving ``w/2`` events after it was asked — the
  mean wait of an event in a batch window, so the comparison with batch mode is at equal label latency;
- ``batch top-k``: windows of ``w`` events, the ``B·w`` most informative asked when the window closes
  (``BatchSelector`` with ``diversity = 0``); labels learned at the window's close;
- ``batch λ=1``, ``batch λ=4``: the same with the diversity penalty ``score·(1 − max_sim)^λ``;
- ``batch k-center``: greedy k-center on the ``3·k`` most informative events.

Measured: prequential accuracy over every event; labels used (% of events); **redundancy** of the asked
events: the mean pairwise similarity (``exp(−d²)`` on window-standardised features, see
``activestream.decide.batch``) of the events asked within the same window of ``w`` events (for the
per-event methods: consecutive chunks of ``w`` events), averaged over windows with two asks or more.

Streams: ``sea_abrupt`` (3 features, abrupt drifts), ``rbf_drift`` (10 features, moving centroids),
``sea_bursty`` — ``sea_abrupt`` where every event comes in a burst of near-duplicates (1 + Geometric(0.3)
copies, mean 3.3, each feature jittered by ``N(0, 0.05)``, same label), as retries, sessions or sensor
repeats produce — and ``elec`` when its CSV is found. Full mode: 20,000 events (elec: 20,000), budgets
5% and 10%, window 100, 3 seeds; ``--quick``: 5,000 events, 1 seed.

Outputs: ``benchmarks/results/batch_diversity.md`` and ``batch_diversity.png``; ``--quick`` writes
``batch_diversity_quick.*``.

    PYTHONPATH=service python benchmarks/batch_diversity.py      # about 7 minutes
"""

from __future__ import annotations

import itertools
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from river import metrics

from activestream.datasets import Stream, find_elec_csv, make_stream
from activestream.decide.batch import BatchSelector, WindowGeometry, mean_pairwise_similarity
from activestream.learner import DEFAULT_MEASURE, DEFAULT_POLICY, make_learner
from activestream.models import make_model
from activestream.score import make_measure
from activestream.types import ClassLabel, Features
from annotation_report import base_parser, mean, output, pyplot, save_figure, write_report

METHODS = ("per-event", "per-event, delay w/2", "batch top-k", "batch λ=1", "batch λ=4", "batch k-center")
BATCH = {
    "batch top-k": {"diversity": 0.0},
    "batch λ=1": {"diversity": 1.0},
    "batch λ=4": {"diversity": 4.0},
    "batch k-center": {"method": "kcenter"},
}


def bursty(stream: Stream, seed: int) -> Stream:
    """Each event of ``stream`` repeated 1 + Geometric(0.3) times with jitter (see the docstring)."""

    def source() -> Iterator[tuple[Features, ClassLabel]]:
        rng = random.Random(seed)
        for x, y in stream:
            copies = 1
            while rng.random() > 0.3:
                copies += 1
            for _ in range(copies):
                yield {k: v + rng.gauss(0.0, 0.05) for k, v in x.items()}, y

    return Stream(f"{stream.name.split('_')[0]}_bursty", stream.n, (), source)


def load(name: str, n: int, seed: int) -> Stream:
    if name == "sea_bursty":
        return bursty(make_stream("sea_abrupt", n=n, seed=seed), seed)
    return make_stream(name, n=n, seed=seed)


@dataclass(frozen=True)
class Run:
    stream: str
    method: str
    budget: float
    seed: int
    n: int
    labels: int
    accuracy: float
    redundancy: float | None
    seconds: float


def _argmax(proba: dict) -> ClassLabel | None:
    return max(proba, key=proba.__getitem__) if proba else None


def _redundancy(windows: Iterable[tuple[list[Features], list[int]]]) -> float | None:
    values = []
    for xs, asked in windows:
        value = mean_pairwise_similarity(WindowGeometry(xs), asked)
        if value is not None:
            values.append(value)
    return statistics.fmean(values) if values else None


def run_per_event(data: Sequence, model: str, budget: float, window: int, seed: int, delay: int) -> tuple:
    learner = make_learner(model, DEFAULT_MEASURE, DEFAULT_POLICY, budget=budget, seed=seed)
    accuracy = metrics.Accuracy()
    in_flight: deque[tuple[int, Features, ClassLabel]] = deque()
    labels = 0
    windows, xs, asked = [], [], []
    for n, (x, y) in enumerate(data):
        y_pred, ask = learner.predict_one(x)
        accuracy.update(y, y_pred)
        xs.append(x)
        if ask:
            labels += 1
            asked.append(len(xs) - 1)
            in_flight.append((n + delay, x, y))
        while in_flight and in_flight[0][0] <= n:
            _, x_due, y_due = in_flight.popleft()
            learner.learn_one(x_due, y_due)
        if len(xs) == window:
            windows.append((xs, asked))
            xs, asked = [], []
    return labels, accuracy.get(), _redundancy(windows)


def run_batch(data: Sequence, model: str, budget: float, window: int, seed: int, options: dict) -> tuple:
    classifier = make_model(model, seed)
    measure = make_measure(DEFAULT_MEASURE, seed=seed)
    selector = BatchSelector(budget, window, seed=seed, **options)
    accuracy = metrics.Accuracy()
    labels = 0
    windows = []
    held: list[tuple[Features, ClassLabel]] = []
    for n, (x, y) in enumerate(data):
        proba = dict(classifier.predict_proba_one(x))
        accuracy.update(y, _argmax(proba))
        held.append((x, y))
        chosen = selector.offer(str(n), x, measure.score(x, proba, classifier))
        if len(held) == window:  # the window closed (with or without asks)
            first = n - window + 1
            indices = [int(event_id) - first for event_id in chosen]
            for i in indices:
                classifier.learn_one(*held[i])
                measure.learn_one(*held[i])
            labels += len(indices)
            windows.append(([x for x, _ in held], indices))
            held = []
    return labels, accuracy.get(), _redundancy(windows)


def run_one(task: tuple[str, str, float, int, int, int, str]) -> Run:
    stream_name, method, budget, seed, n, window, model = task
    data = list(load(stream_name, n, seed))
    started = time.perf_counter()
    if method == "per-event":
        labels, acc, red = run_per_event(data, model, budget, window, seed, delay=0)
    elif method == "per-event, delay w/2":
        labels, acc, red = run_per_event(data, model, budget, window, seed, delay=window // 2)
    else:
        labels, acc, red = run_batch(data, model, budget, window, seed, BATCH[method])
    return Run(stream_name, method, budget, seed, len(data), labels, acc, red, time.perf_counter() - started)


def table(runs: list[Run], streams: Sequence[str], budgets: Sequence[float]) -> list[str]:
    lines = [
        "| stream | budget | method | accuracy % | labels % | redundancy (mean pairwise sim.) |",
        "|---|---|---|---|---|---|",
    ]
    for stream, budget in itertools.product(streams, budgets):
        group = {
            m: [r for r in runs if (r.stream, r.budget, r.method) == (stream, budget, m)] for m in METHODS
        }
        if not any(group.values()):
            continue
        accs = {m: mean(r.accuracy for r in rs) for m, rs in group.items()}
        best = max(a for a in accs.values() if a is not None)
        for method, rs in group.items():
            acc = accs[method]
            labels = mean(r.labels / r.n for r in rs)
            red = mean(r.redundancy for r in rs)
            acc_text = f"{100 * acc:.1f}" if acc is not None else "—"
            if acc is not None and acc >= best - 1e-9:
                acc_text = f"**{acc_text}**"
            red_text = f"{red:.3f}" if red is not None else "—"
            labels_text = f"{100 * (labels or 0):.2f}"
            lines.append(f"| {stream} | {budget:.0%} | {method} | {acc_text} | {labels_text} | {red_text} |")
    return lines


def plot(runs: list[Run], streams: Sequence[str], budget: float, out: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / len(METHODS)
    for i, method in enumerate(METHODS):
        accs, reds = [], []
        for stream in streams:
            rs = [r for r in runs if (r.stream, r.budget, r.method) == (stream, budget, method)]
            accs.append(100 * (mean(r.accuracy for r in rs) or 0))
            reds.append(mean(r.redundancy for r in rs) or 0)
        xs = [j + (i - len(METHODS) / 2 + 0.5) * width for j in range(len(streams))]
        axes[0].bar(xs, accs, width, label=method)
        axes[1].bar(xs, reds, width, label=method)
    for ax, title in zip(axes, ("prequential accuracy %", "redundancy of asked events"), strict=True):
        ax.set_xticks(range(len(streams)), streams)
        ax.set_title(f"{title} (budget {budget:.0%})")
    low = min(100 * r.accuracy for r in runs if r.budget == budget)
    axes[0].set_ylim(max(0, low - 5), None)
    axes[1].legend(fontsize=8)
    save_figure(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--window", type=int, default=100)
    args = parser.parse_args(argv)
    n, seeds = (5_000, [1]) if args.quick else (20_000, [1, 2, 3])
    budgets = (0.05, 0.10)
    streams = ["sea_abrupt", "rbf_drift", "sea_bursty"] + (["elec"] if find_elec_csv() else [])
    tasks = [
        (stream, method, budget, seed, n, args.window, args.model)
        for stream in streams
        for budget in budgets
        for seed in (seeds if stream != "elec" else seeds[:1])
        for method in METHODS
    ]
    started = time.perf_counter()
    runs = []
    for i, task in enumerate(tasks, 1):
        runs.append(run_one(task))
        print(f"[{i}/{len(tasks)}] {task[:4]} acc={runs[-1].accuracy:.4f}", file=sys.stderr)
    seconds = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    plot(runs, streams, 0.05, output(args.out, "batch_diversity", args.quick, ".png"))
    setup = (
        f"{n:,} events per stream, window w = {args.window}, model {args.model}, measure "
        f"{DEFAULT_MEASURE} (per-event policy {DEFAULT_POLICY}), seeds {seeds} (elec: the first only); "
        "means over seeds, best accuracy of a group in bold."
    )
    note = (
        "Redundancy is the mean pairwise similarity of the events asked within the same window "
        "(1 = identical, about 0.14 for two unrelated events); lower means the labels cover more ground."
    )
    title = "Batch mode with diversity vs per-event selection"
    figure = "accuracy and redundancy at a 5% budget"
    body = table(runs, streams, budgets)
    path = write_report(args.out, "batch_diversity", title, args.quick, seconds, setup, body, figure, [note])
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
