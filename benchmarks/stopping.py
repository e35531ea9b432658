"""Stopping criteria: how many labels a pause saves, and what accuracy it costs.

Protocol: prequential on one stationary and two drifting streams; the learner is activestream's default
``margin/split`` (Split's random part, ``v = 0.2``, is the unbiased sample the plateau criterion reads)
on ``--model`` (default ``logreg``) at budget ``B``; labels arrive at once. The methods differ only in
whether a :class:`activestream.stopping.StoppingMonitor` may hold requests back:

- ``never stop``: every request the policy makes goes out (the baseline);
- ``plateau``: pause at the plateau signal only (``m = 100`` random labels, ``ε = 0.01``); while paused only
  random requests go out, and the monitor resumes by itself when their accuracy falls 5 points below
  its value at the pause;
- ``plateau + drift``: the same, and an ADWIN detector (δ = 0.002) on the errors of the labels that do
  arrive calls ``resume()`` at a detected drift — the hook the service's drift work calls;
- ``stable predictions + drift``: pause only when predictions on a held set of 200 recent events stabilise
  (mean kappa ≥ 0.99 over 3 checks, one check every 25 labels), resume on drift as above;
- ``cap 50%``: ``max_labels`` at half of what ``never stop`` used (a hard cap, for contrast).

Streams: ``sea_stationary`` (SEA concept 0, 10% label noise, no drift), ``sea_abrupt`` (three abrupt
drifts) and ``stagger_recurring`` (three abrupt drifts, the first concept recurs). Full mode: 40,000
events, budget 10%, seeds 1-3; ``--quick``: 12,000 events, seed 1.

Outputs: ``benchmarks/results/stopping.md`` and ``stopping.png`` (window accuracy and labels used over
time on ``sea_abrupt``); ``--quick`` writes ``stopping_quick.*``.

    PYTHONPATH=service python benchmarks/stopping.py      # about 2 minutes
"""

from __future__ import annotations

import itertools
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from river import drift, metrics
from river.datasets import synth

from activestream.batch_scoring import predict_many
from activestream.datasets import Stream, make_stream
from activestream.learner import DEFAULT_MEASURE, DEFAULT_POLICY, make_learner
from activestream.stopping import StoppingMonitor
from annotation_report import base_parser, mean, output, pyplot, save_figure, write_report

METHODS = ("never stop", "plateau", "plateau + drift", "stable predictions + drift", "cap 50%")
STREAMS = ("sea_stationary", "sea_abrupt", "stagger_recurring")


def load(name: str, n: int, seed: int) -> Stream:
    if name == "sea_stationary":
        return Stream(name, n, (), lambda: synth.SEA(variant=0, noise=0.1, seed=seed))
    return make_stream(name, n=n, seed=seed)


@dataclass
class Run:
    stream: str
    method: str
    seed: int
    n: int
    labels: int
    accuracy: float
    post_drift_accuracy: float | None
    pauses: int
    resumes: int
    curve: list[tuple[int, float, int]] = field(repr=False, default_factory=list)


def monitor_for(method: str, cap: int | None, seed: int) -> StoppingMonitor | None:
    if method == "never stop":
        return None
    if method == "cap 50%":
        return StoppingMonitor(max_labels=cap, seed=seed)
    if method.startswith("stable"):
        # The plateau is made unreachable (an "improvement" ≤ −2 never happens): only predictions pause.
        return StoppingMonitor(pause_on_signal=True, plateau_epsilon=-2.0, stability_sample=0.2, seed=seed)
    # Kappa never reaches 2: only the plateau pauses.
    return StoppingMonitor(pause_on_signal=True, stability_threshold=2.0, seed=seed)


def run_one(stream: Stream, method: str, budget: float, seed: int, model: str, cap: int | None) -> Run:
    learner = make_learner(model, DEFAULT_MEASURE, DEFAULT_POLICY, budget, seed)
    monitor = monitor_for(method, cap, seed)
    detector = drift.ADWIN(delta=0.002) if method.endswith("drift") else None
    accuracy, post = metrics.Accuracy(), metrics.Accuracy()
    recent: deque[bool] = deque(maxlen=1000)
    drifts = stream.drifts
    labels = 0
    curve = []
    for n, (x, y) in enumerate(stream, start=1):
        decision = learner.decide(x)
        accuracy.update(y, decision.y_pred)
        recent.append(decision.y_pred == y)
        if drifts and any(d <= n < d + 2000 for d in drifts):  # the 2,000 events after each drift
            post.update(y, decision.y_pred)
        if monitor is not None:
            monitor.observe(x)
        if decision.ask and (monitor is None or monitor.allows(decision.reason)):
            labels += 1
            learner.learn_one(x, y)
            if monitor is not None:
                monitor.on_ask()
                if decision.reason == "random":
                    monitor.on_random_label(decision.y_pred == y)
                monitor.check_stability(labels, lambda rows: predict_many(learner.classifier, rows))
            if detector is not None:
                detector.update(float(decision.y_pred != y))
                if detector.drift_detected and monitor is not None:
                    monitor.resume()
        if n % 500 == 0:
            curve.append((n, sum(recent) / len(recent), labels))
    return Run(
        stream.name,
        method,
        seed,
        stream.n,
        labels,
        accuracy.get(),
        post.get() if drifts else None,
        monitor.pauses if monitor else 0,
        monitor.resumes if monitor else 0,
        curve,
    )


def table(runs: list[Run]) -> list[str]:
    lines = [
        "| stream | method | labels % | labels saved | accuracy % | Δ accuracy (points) "
        "| post-drift accuracy % | pauses / resumes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for stream in STREAMS:
        group = {m: [r for r in runs if (r.stream, r.method) == (stream, m)] for m in METHODS}
        if not group["never stop"]:
            continue
        base_labels = mean(r.labels for r in group["never stop"]) or 0
        base_acc = mean(r.accuracy for r in group["never stop"]) or 0
        for method, rs in group.items():
            labels = mean(r.labels for r in rs) or 0
            acc = mean(r.accuracy for r in rs) or 0
            post = mean(r.post_drift_accuracy for r in rs)
            saved = 1 - labels / base_labels if base_labels else 0
            lines.append(
                f"| {stream} | {method} | {100 * labels / rs[0].n:.2f} | {saved:.0%} | {100 * acc:.1f} "
                f"| {100 * (acc - base_acc):+.1f} | {'—' if post is None else f'{100 * post:.1f}'} "
                f"| {mean(r.pauses for r in rs):.1f} / {mean(r.resumes for r in rs):.1f} |"
            )
    return lines


def plot(runs: list[Run], stream: str, seed: int, out: Path) -> None:
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for method in METHODS:
        run = next((r for r in runs if (r.stream, r.method, r.seed) == (stream, method, seed)), None)
        if run is None:
            continue
        xs = [n for n, _, _ in run.curve]
        top.plot(xs, [100 * a for _, a, _ in run.curve], label=method, lw=1.2)
        bottom.plot(xs, [labels for _, _, labels in run.curve], label=method, lw=1.2)
    drifts = load(stream, runs[0].n, seed).drifts
    for ax in (top, bottom):
        for d in drifts:
            ax.axvline(d, color="grey", ls=":", lw=1)
    top.set_ylabel("accuracy % (last 1,000)")
    bottom.set_ylabel("labels used")
    bottom.set_xlabel("events")
    top.set_title(f"Pausing label requests on {stream} (seed {seed}); dotted: drifts")
    bottom.legend(fontsize=8)
    save_figure(fig, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__, budget=0.1)
    args = parser.parse_args(argv)
    n, seeds = (12_000, [1]) if args.quick else (40_000, [1, 2, 3])
    started = time.perf_counter()
    runs: list[Run] = []
    for stream_name, seed in itertools.product(STREAMS, seeds):
        stream = load(stream_name, n, seed)
        baseline = run_one(stream, "never stop", args.budget, seed, args.model, None)
        runs.append(baseline)
        for method in METHODS[1:]:
            runs.append(run_one(stream, method, args.budget, seed, args.model, baseline.labels // 2))
            print(f"{stream_name} seed {seed} {method}: {runs[-1].labels} labels", file=sys.stderr)
    seconds = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    plot(runs, "sea_abrupt", seeds[0], output(args.out, "stopping", args.quick, ".png"))
    setup = (
        f"{n:,} events per stream, budget {args.budget:.0%}, model {args.model}, "
        f"{DEFAULT_MEASURE}/{DEFAULT_POLICY} (v = 0.2), seeds {seeds}, means over seeds. Post-drift "
        "accuracy: the 2,000 events after each drift. Labels saved: relative to `never stop`."
    )
    title = "Stopping criteria: labels saved and accuracy cost"
    figure = "window accuracy and labels used on sea_abrupt"
    path = write_report(args.out, "stopping", title, args.quick, seconds, setup, table(runs), figure)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
