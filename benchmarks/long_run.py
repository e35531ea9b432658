"""The service over a long stream: is its memory flat, what does deciding cost per event (issue #16)?

Protocol. A ``Service`` with the default settings (margin/split at 10%, both drift arms around ``logreg``,
the label-free detector, the stopping monitor, the journal, a checkpoint every 30 s, the metrics server,
scraped at every sample) decides ``--events`` events (1,000,000; ``--quick`` 100,000) of a river stream
(``--stream``, default ``hyperplane``: 10 floats, drifting on every event) from a cold model. Every label
request is answered with the stream's label at the first poll once its event is ``--delay`` (500) events
old: 500-999 events late with the default batches of 500. In this process, with no broker:
``transport.memory`` keeps every record ever produced, so ``Stream`` generates the events as they are
polled and answers the requests, keeping nothing it handed out (other records are counted, dropped).
The benchmark's own records in the RSS: 8 bytes a label, a tuple a decide call, 100 samples.

Memory: RSS (``/proc/self/statm``) and more every ``n / 100`` events. **Flat**, defined before the run:
the least-squares RSS growth over the second half (slope × n / 2) is below 5% of the RSS at mid-stream.
``--trace`` adds tracemalloc's largest allocations at the end and growths since mid-stream (slower).

Decide latency: ``Engine.on_events`` (parse, validate, score both arms and the detector, decide, build
the requests of a run of events) timed by a wrapper set from here; per-event cost = a call's time / its
events, compared with the issue's "p99 decide < 1 ms" (the report says why), each call's time beside it.

Outputs ``benchmarks/results/long_run[_quick].md``, ``.csv`` (the samples) and ``.png``. From the
repository root, nothing else heavy running (``make bench`` runs ``--quick``)::

    python benchmarks/long_run.py [--events 1000000] [--delay 500] [--trace] [--quick]
"""

from __future__ import annotations

import argparse
import array
import collections
import csv
import gc
import itertools
import json
import os
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from activestream.app import YOUNG_GENERATION_THRESHOLD, tune_garbage_collector
from activestream.config import Settings
from activestream.datasets import STREAMS, make_stream
from activestream.http import HttpServer
from activestream.journal import Journal
from activestream.metrics import Metric
from activestream.service import Service
from activestream.transport.base import Consumer, Message, Producer, RebalanceCallback, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FULL_N, QUICK_N = 1_000_000, 100_000
#: Flat: least-squares RSS growth over the second half below this share of the RSS at mid-stream.
FLAT_SHARE = 0.05
TARGET_US = 1000.0
PAGE_KB = os.sysconf("SC_PAGE_SIZE") / 1024


# -- the stream in, the requests out -------------------------------------------------------------------------


class Stream(Consumer, Producer):
    """The service's consumer and producer: events generated as they are polled; label requests answered
    with the true label once their event is ``delay`` events old; nothing kept once handed out."""

    def __init__(self, settings: Settings, examples: Iterator[tuple[dict, Any]], delay: int):
        self.settings, self.examples, self.delay = settings, examples, delay
        self.truth: dict[str, Any] = {}  # labels of the events of the batch in flight
        self.due: collections.deque[tuple[int, Message]] = collections.deque()
        self.fed = self.answered = 0
        self.exhausted = False
        self.on_assign: RebalanceCallback | None = None
        self.dropped: collections.Counter[str] = collections.Counter()

    def subscribe(self, topics: Sequence[str], on_assign: RebalanceCallback | None = None, **_: Any) -> None:
        self.on_assign = on_assign

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        if self.on_assign is not None:
            self.on_assign, assign = None, self.on_assign
            assign(self.assignment())
        if self.due and (self.due[0][0] <= self.fed or self.exhausted):
            return [self.due.popleft()[1] for _ in range(min(len(self.due), max_records))]
        self.truth.clear()
        batch = []
        for x, y in itertools.islice(self.examples, max_records):
            event_id = f"ev-{self.fed:07d}"
            self.truth[event_id] = y
            value = json.dumps({"id": event_id, "features": x}).encode()
            batch.append(Message(self.settings.events_topic, 0, self.fed, value, event_id.encode()))
            self.fed += 1
        self.exhausted = len(batch) < max_records
        return batch

    def produce(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = ()) -> None:
        if topic != self.settings.requests_topic:
            self.dropped[topic] += 1
            return
        request = json.loads(value)
        event_id = request["event_id"]
        label = {"request_id": request["request_id"], "event_id": event_id, "label": self.truth[event_id]}
        message = Message(self.settings.labels_topic, 0, self.answered, json.dumps(label).encode(), key)
        self.due.append((int(event_id.removeprefix("ev-")) + self.delay, message))
        self.answered += 1

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(self.settings.events_topic, 0), TopicPartition(self.settings.labels_topic, 0)}

    def lag(self) -> dict[TopicPartition, int]:
        return dict.fromkeys(self.assignment(), 0 if self.exhausted else 1)

    def committed(self, tp: TopicPartition) -> int | None:
        return None  # a fresh group: nothing to seek back to

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...
    def seek(self, tp: TopicPartition, offset: int) -> None: ...
    def flush(self, timeout_s: float) -> None: ...
    def close(self) -> None: ...


# -- the run ----------------------------------------------------------------------------------------------


@dataclass
class Run:
    events: int
    seconds: float = 0.0
    samples: list[dict[str, float]] = field(default_factory=list)
    #: Each decide call: wall-clock ns, events, full GCs inside, the thread's CPU ns.
    decides: list[tuple[int, int, int, int]] = field(default_factory=list)
    label_ns: array.array = field(default_factory=lambda: array.array("q"))  # 8 bytes a label, no object
    gc_ns: list[int] = field(default_factory=list)  # each full (generation 2) collection's pause
    counts: dict[str, int] = field(default_factory=dict)
    trace: dict[str, list[str]] = field(default_factory=dict)
    frozen: int = 0  # objects taken out of full collections after start-up (0: --no-freeze)

    def watch_gc(self, phase: str, info: Mapping[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                self.gc_ns.append(-time.perf_counter_ns())
            else:
                self.gc_ns[-1] += time.perf_counter_ns()

    def timed(self, inner: Any, calls: list | array.array, sized: bool) -> Any:
        """``inner`` adding each call's time (with its events and the full GCs inside, if ``sized``)."""

        def wrapper(messages: Any, now_ms: int, **kwargs: Any) -> Any:
            gcs, cpu, started = len(self.gc_ns), time.thread_time_ns(), time.perf_counter_ns()
            result = inner(messages, now_ms, **kwargs)
            elapsed = time.perf_counter_ns() - started
            if sized:
                calls.append((elapsed, len(messages), len(self.gc_ns) - gcs, time.thread_time_ns() - cpu))
            else:
                calls.append(elapsed)
            return result

        return wrapper


def sample(run: Run, service: Service, stream: Stream, started: float, port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        scraped = len(response.read())
    journal = Journal.path_for(service.settings.checkpoint_path)
    run.samples.append(
        {
            "events": stream.fed,
            "seconds": round(time.perf_counter() - started, 3),
            "rss_mb": round(int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_KB / 1024, 2),
            "python_blocks": sys.getallocatedblocks(),
            "pending": len(service.pending),
            # Answered or expired request ids the store remembers (to reject a second label), up to
            # pending_max: read from outside, the store has no public count of them.
            "closed_ids": len(service.pending.closed),
            "labels_learned": service.model_version,
            "journal_kb": round(journal.stat().st_size / 1024, 1) if journal.exists() else 0,
            "metrics_kb": round(scraped / 1024, 1),
        }
    )


def long_run(
    n: int, delay: int, stream: str = "hyperplane", seed: int = 1, trace: bool = False, freeze: bool = True
) -> Run:
    """Run the service over ``n`` events: the samples, every decide call's time, the label times.

    ``freeze``: tune the garbage collector after ``start()`` as ``activestream run`` does
    (``app.tune_garbage_collector``: the start-up heap frozen, the young generation widened); ``False``
    measures the loop with CPython's defaults."""
    run, every, mid = Run(n), max(1, n // 100), None
    if trace:
        tracemalloc.start()
    gc.callbacks.append(run.watch_gc)
    with tempfile.TemporaryDirectory(prefix="long-run-") as tmp:
        settings = Settings(checkpoint_path=Path(tmp) / "long_run.ckpt")
        source = Stream(settings, iter(make_stream(stream, n=n, seed=seed)), delay)
        service = Service(settings, source, source)
        engine = service.engine
        engine.on_events = run.timed(engine.on_events, run.decides, sized=True)  # type: ignore[method-assign]
        engine.on_label = run.timed(engine.on_label, run.label_ns, sized=False)  # type: ignore[method-assign]
        server = HttpServer(service.metrics, service.health, "127.0.0.1", 0).start()
        started = time.perf_counter()
        service.start()
        before = gc.get_threshold()
        run.frozen = tune_garbage_collector() if freeze else 0
        sample(run, service, source, started, server.port)
        while not source.exhausted or source.due:
            service.run_once()
            if source.fed >= len(run.samples) * every:
                sample(run, service, source, started, server.port)
                if len(run.samples) % 10 == 1:
                    print(f"{source.fed:,} events, RSS {run.samples[-1]['rss_mb']:.1f} MB", flush=True)
                if trace and mid is None and source.fed >= n // 2:
                    mid = tracemalloc.take_snapshot()
        sample(run, service, source, started, server.port)
        run.seconds = time.perf_counter() - started
        service.shutdown()
        server.stop()
    gc.callbacks.remove(run.watch_gc)
    gc.unfreeze()
    gc.set_threshold(*before)
    if trace:
        run.trace = trace_tops(mid, tracemalloc.take_snapshot())
        tracemalloc.stop()
    requests = int(service.metrics.value(Metric.LABEL_REQUESTS) or 0)
    run.counts = {"label requests": requests, "labels learned": service.model_version, **source.dropped}
    return run


def trace_tops(mid: tracemalloc.Snapshot | None, end: tracemalloc.Snapshot, top: int = 10) -> dict:
    """The largest allocations at the end, and the largest growths since mid-stream, by source line."""

    def where(stat: tracemalloc.Statistic | tracemalloc.StatisticDiff) -> str:
        frame = stat.traceback[0]
        name = re.sub(r"^.*/(site-packages|service|lib)/", "", frame.filename.replace(f"{ROOT}/", ""))
        return f"`{name}:{frame.lineno}`"

    held = [f"{s.size / 1e6:.2f} MB, {s.count:,} blocks: {where(s)}" for s in end.statistics("lineno")]
    grew = [] if mid is None else end.compare_to(mid, "lineno")
    return {
        "held": held[:top],
        "grew": [f"{s.size_diff / 1e6:+.2f} MB, {s.count_diff:+,} blocks: {where(s)}" for s in grew[:top]],
    }


# -- the verdicts --------------------------------------------------------------------------------------------


def rss_at(samples: Sequence[Mapping[str, float]], events: float) -> Mapping[str, float]:
    """The first sample at or after ``events`` (the last one for the end of the stream)."""
    return next((s for s in samples if s["events"] >= events), samples[-1])


def memory_verdict(samples: Sequence[Mapping[str, float]], n: int) -> dict[str, float | bool]:
    """RSS at 10/50/100%, the second half's least-squares slope (MB per 100k events), flat or not."""
    half = [s for s in samples if s["events"] >= n / 2]
    xs, ys = [s["events"] for s in half], [s["rss_mb"] for s in half]
    slope = statistics.linear_regression(xs, ys).slope if len(set(xs)) > 1 else 0.0
    mid = rss_at(samples, n / 2)["rss_mb"]
    growth = slope * n / 2
    return {
        "rss_10": rss_at(samples, n / 10)["rss_mb"],
        "rss_50": mid,
        "rss_100": samples[-1]["rss_mb"],
        "slope_mb_per_100k": slope * 100_000,
        "growth_mb": growth,
        "growth_share": growth / mid,
        "flat": growth < FLAT_SHARE * mid,
    }


def quantile(values: Sequence[float], q: float, weights: Sequence[int] | None = None) -> float:
    """The ``q`` quantile (nearest rank), each value counted ``weights[i]`` times."""
    pairs = sorted(zip(values, weights or [1] * len(values), strict=True))
    total, seen = sum(w for _, w in pairs), 0
    for value, weight in pairs:
        seen += weight
        if seen >= q * total:
            return value
    return pairs[-1][0]


def decide_verdict(decides: Sequence[tuple[int, int, int, int]]) -> dict[str, float | bool]:
    """Per-event cost (call time / its events; quantiles over events) and per-call latency, in µs."""
    calls = [(ns / 1000, size, gcs) for ns, size, gcs, _ in decides if size]
    per_event, sizes = [us / size for us, size, _ in calls], [size for _, size, _ in calls]
    cpu = [cpu_ns / 1000 / size for _, size, _, cpu_ns in decides if size]
    p99 = quantile(per_event, 0.99, sizes)
    return {
        "per_event_median_us": quantile(per_event, 0.5, sizes),
        "per_event_p99_us": p99,
        "per_event_p999_us": quantile(per_event, 0.999, sizes),
        "per_event_max_us": max(per_event),
        "batch_p50_us": quantile([us for us, _, _ in calls], 0.5),
        "batch_p99_us": quantile([us for us, _, _ in calls], 0.99),
        "batch_max_us": max(us for us, _, _ in calls),
        "batch_p99_no_gc_us": quantile([us for us, _, gcs in calls if not gcs] or [float("nan")], 0.99),
        "per_event_cpu_median_us": quantile(cpu, 0.5, sizes),
        "per_event_cpu_p99_us": quantile(cpu, 0.99, sizes),
        "batch_size": quantile(sizes, 0.5),
        "calls": len(calls),
        "gc_calls": sum(1 for *_, gcs in calls if gcs),
        "met": p99 < TARGET_US,
    }


# -- the report ----------------------------------------------------------------------------------------------


def write_outputs(run: Run, args: argparse.Namespace, info: Mapping[str, str], out: Path, stem: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{stem}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(run.samples[0]))
        writer.writeheader()
        writer.writerows(run.samples)
    plot(run, out / f"{stem}.png")
    (out / f"{stem}.md").write_text("\n".join(report(run, args, info, stem)) + "\n", encoding="utf-8")
    return out / f"{stem}.md"


def report(run: Run, args: argparse.Namespace, info: Mapping[str, str], stem: str) -> list[str]:
    mem, dec, n = memory_verdict(run.samples, run.events), decide_verdict(run.decides), run.events
    mid, end = rss_at(run.samples, n / 2), run.samples[-1]
    added = end["closed_ids"] - mid["closed_ids"]
    per_id = f"{mem['growth_mb'] * 1e6 / added:,.0f} bytes of growth per id added in the second half"
    per_id = per_id if added >= 1000 else f"{added:,} added in the second half"
    labels = [ns / 1000 for ns in run.label_ns] or [float("nan")]
    gc_ms = [ns / 1e6 for ns in run.gc_ns] or [float("nan")]
    flags = f"--events {n} --delay {args.delay} --stream {args.stream}" + " --trace" * args.trace
    lines = [
        "# The service over a long stream: memory and decide latency",
        "",
        f"Generated by `python benchmarks/long_run.py {flags}` in {run.seconds:,.0f} s "
        f"({n / run.seconds:,.0f} events/s, everything included): {n:,} events of `{args.stream}` "
        f"(seed {args.seed}) through a "
        "`Service` with the default settings, cold, in one process with no broker; every request answered "
        f"{args.delay}-{args.delay + 499} events late (batches of 500). Protocol: the module docstring.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        "",
        "## Memory",
        "",
        f"**Flat**, defined before the run: the least-squares RSS growth over the second half (slope × "
        f"{n // 2:,} events) is below {FLAT_SHARE:.0%} of the RSS at mid-stream."
        + (" With `--trace`, tracemalloc's own traces are in the RSS." if args.trace else ""),
        "",
        "| RSS at 10% | at 50% | at 100% | slope, second half | growth, second half | verdict |",
        "|---|---|---|---|---|---|",
        f"| {mem['rss_10']:.1f} MB | {mem['rss_50']:.1f} MB | {mem['rss_100']:.1f} MB | "
        f"{mem['slope_mb_per_100k']:+.3f} MB / 100k events | {mem['growth_mb']:+.2f} MB "
        f"({mem['growth_share']:+.1%}) | **{'flat' if mem['flat'] else 'grows'}** |",
        "",
        f"At start, 50% and the end: Python's allocated blocks {run.samples[0]['python_blocks']:,}, "
        f"{mid['python_blocks']:,}, {end['python_blocks']:,}; answered or expired request ids remembered "
        f"(bounded by `pending_max`) {run.samples[0]['closed_ids']:,}, {mid['closed_ids']:,}, "
        f"{end['closed_ids']:,} ({per_id}). {', '.join(f'{k}: {v:,}' for k, v in run.counts.items())}. "
        f"Every sample (pending requests, journal size, metrics page) in [{stem}.csv]({stem}.csv).",
        "",
        "## Decide latency",
        "",
        f"`Engine.on_events`: {dec['calls']:,} calls (runs of events, median {dec['batch_size']:.0f}).",
        "",
        "| per event: median | p99 | p99.9 | max | per call: median | p99 | max |",
        "|---|---|---|---|---|---|---|",
        f"| {dec['per_event_median_us']:.1f} µs | {dec['per_event_p99_us']:.1f} µs | "
        f"{dec['per_event_p999_us']:.1f} µs | {dec['per_event_max_us']:.1f} µs | "
        f"{dec['batch_p50_us'] / 1000:.2f} ms | {dec['batch_p99_us'] / 1000:.2f} ms | "
        f"{dec['batch_max_us'] / 1000:.2f} ms |",
        "",
        f"**p99 decide < 1 ms: {'met' if dec['met'] else 'missed'}** ({dec['per_event_p99_us']:.1f} µs), "
        "compared with the per-event cost (a call's time over its events, quantiles over events): the "
        'issue sets it beside "the same decisions as the per-event path", whose decide is one event\'s, '
        "and batching must not cost an event more. It is not an event's latency: an event's decision waits "
        f"for its whole run, p99 {dec['batch_p99_us'] / 1000:.2f} ms at {dec['batch_size']:.0f} events "
        f"({'under' if dec['batch_p99_us'] < TARGET_US else 'over'} 1 ms); and a per-event p99 is one of "
        "run means: a slow event inside a run is averaged away.",
        "",
        f"The loop thread's CPU time in those calls (`time.thread_time_ns`), which waiting for a CPU on a "
        f"shared machine does not inflate: per event median {dec['per_event_cpu_median_us']:.1f} µs, "
        f"p99 {dec['per_event_cpu_p99_us']:.1f} µs.",
        "",
        (
            "Garbage collector tuned as `activestream run` does (`app.tune_garbage_collector`): "
            f"{run.frozen:,} start-up objects out of full collections, a young collection every "
            f"{YOUNG_GENERATION_THRESHOLD:,} allocations. "
            if run.frozen
            else "CPython's garbage collector defaults (`--no-freeze`): every full collection walks the "
            "start-up heap. "
        )
        + f"Full (generation 2) garbage collections: {len(run.gc_ns):,}, pause median "
        f"{quantile(gc_ms, 0.5):.1f} ms, max {max(gc_ms):.1f} ms; {dec['gc_calls']:,} decide "
        "calls held one "
        f"(per-call p99 without them: {dec['batch_p99_no_gc_us'] / 1000:.2f} ms). "
        f"Labels (`Engine.on_label`, {len(run.label_ns):,}): median {quantile(labels, 0.5):.0f} µs, "
        f"p99 {quantile(labels, 0.99):.0f} µs.",
        "",
    ]
    for title, key in (("largest at the end", "held"), ("largest growths since mid-stream", "grew")):
        if run.trace.get(key):
            lines += [f"## tracemalloc: {title}", "", *(f"- {line}" for line in run.trace[key]), ""]
    return [*lines, f"![RSS and decide time]({stem}.png)"]


def plot(run: Run, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    top.plot([s["events"] for s in run.samples], [s["rss_mb"] for s in run.samples], lw=1.5)
    top.set(ylabel="RSS (MB)", ylim=(0, None))
    ends = list(itertools.accumulate(size for _, size, _, _ in run.decides))
    colors = ["tab:red" if gcs else "tab:blue" for _, _, gcs, _ in run.decides]
    bottom.scatter(ends, [ns / 1e3 / size for ns, size, _, _ in run.decides], s=2, c=colors, alpha=0.6)
    bottom.axhline(TARGET_US, color="k", ls="--", lw=1, label="1 ms, the target")
    bottom.set(yscale="log", xlabel="events decided", ylabel="decide, per event (µs)")
    size = decide_verdict(run.decides)["batch_size"]
    right = bottom.secondary_yaxis(
        "right", functions=(lambda us: us * size / 1e3, lambda ms: ms * 1e3 / size)
    )
    right.set_ylabel(f"per call of {size:.0f} events (ms)")
    bottom.set_title("each call of Engine.on_events (red: a full GC inside)", fontsize=9)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def machine(load_start: Sequence[float]) -> dict[str, str]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from service_throughput import machine_info

    info = machine_info()
    info["load average at start (1, 5, 15 min)"] = ", ".join(f"{x:.2f}" for x in load_start)
    info["load average at end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, help=f"default {FULL_N:,} ({QUICK_N:,} with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer events, results to long_run_quick.*")
    parser.add_argument("--delay", type=int, default=500, help="events between a request and its label")
    parser.add_argument("--stream", default="hyperplane", choices=sorted(STREAMS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trace", action="store_true", help="tracemalloc: what holds and grows memory")
    parser.add_argument(
        "--no-freeze", action="store_true", help="leave the start-up heap in full collections (the before)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", help="output file stem (default long_run[_quick])")
    args = parser.parse_args(argv)
    n = args.events or (QUICK_N if args.quick else FULL_N)
    load_start = os.getloadavg()
    run = long_run(n, args.delay, args.stream, args.seed, args.trace, freeze=not args.no_freeze)
    stem = args.name or ("long_run_quick" if args.quick else "long_run")
    md = write_outputs(run, args, machine(load_start), args.out, stem)
    print(md.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
