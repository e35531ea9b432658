"""Events per second of one consumer group with 1, 2 and 3 replicas sharing one model (training log).

Protocol. The embedded Tansu broker; events and labels topics of 4 partitions, a one-partition training
topic. ``--events`` events (10 float features, keyed by id) are produced before the replicas start. Then
N ``activestream run`` processes (default settings, budget 10%, the training topic set, each its own
checkpoint) join one new group, while a simulated annotator answers every label request at once with the
true label, with no key (the labels spread over the partitions: a replica joins the labels of its own
requests at once and the others' through the training log). The rate is the group's committed events
offsets, sampled every 0.5 s, over the span from 20% to 80% of the events after the last replica got its
partitions (start-up and the group's rebalances are outside it; no rate when fewer than two samples fall in
it, and the share decided before is reported). Each replica learns every label (the training log), so
learning does not divide among replicas; deciding does. The figures say what this 2-core machine allows,
where the broker, the annotator and every replica share the same two CPUs.

    python benchmarks/replicas.py                 # 1, 2, 3 replicas, 60,000 events
    python benchmarks/replicas.py --quick         # 1 and 2 replicas, 20,000 events

Writes ``benchmarks/results/replicas[_quick].md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path[:0] = [str(ROOT / "service"), str(ROOT / "tests" / "reliability"), str(ROOT / "benchmarks")]


def run_group(bootstrap: str, replicas: int, events: int, work: Path) -> dict:
    """Run ``replicas`` services over ``events`` preloaded events; the group's rate and what each learned."""
    import reliability_tools as rt

    name = lambda what: f"replicas-{replicas}-{what}"  # noqa: E731
    options = rt.service_options(
        bootstrap,
        name,
        work / "r0.ckpt",
        budget=0.1,
        training_topic=name("training"),
        checkpoint_interval_seconds=30,
        poll_timeout_seconds=1.0,
    )
    rt.ensure_service_topics(bootstrap, options, partitions=4)
    streamer = rt.EventStreamer(bootstrap, options["events_topic"], rate_per_s=1e9, limit=events)
    streamer.start()
    streamer.stop(drain=True)
    annotator = rt.Annotator(
        bootstrap, options["requests_topic"], options["labels_topic"], mean_delay_s=0.001, keyed=False
    )
    services = [
        rt.ServiceProcess({**options, "checkpoint_path": work / f"r{i}.ckpt"}, work / f"r{i}.log")
        for i in range(replicas)
    ]
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample_offsets() -> None:
        while not done.is_set():
            offsets = rt.committed(bootstrap, options["group_id"])
            samples.append((time.monotonic(), rt.committed_total(offsets, options["events_topic"])))
            done.wait(0.5)

    sampler = threading.Thread(target=sample_offsets, daemon=True)
    annotator.start()
    try:
        sampler.start()
        for service in services:
            service.start()
        for service in services:  # the last one assigned: the group's final rebalance is over
            service.wait_assigned(120)
        stable = time.monotonic()
        ports = [service.http_port(60) for service in services]
        rt.wait_for(lambda: samples and samples[-1][1] >= events, 600, "every event decided", 0.5)
        rt.wait_for(lambda: annotator.caught_up and not annotator.waiting, 60, "every request answered")
        posted = len(annotator.stats.posted)
        rt.wait_for(
            lambda: all(rt.learned_from_log(port) >= posted for port in ports), 120, "every label learned"
        )
        joined = [rt.sample(port, 'activestream_labels_total{status="learned"}') for port in ports]
        for service in services:
            assert service.terminate() == 0, service.tail()
    finally:
        done.set()
        for service in services:
            service.ensure_stopped()
        annotator.stop()
    window = [(t, n) for t, n in samples if t >= stable and 0.2 * events <= n <= 0.8 * events]
    decided_before = max((n for t, n in samples if t < stable), default=0)
    rate = float("nan")
    if len(window) >= 2:
        (t0, n0), (t1, n1) = window[0], window[-1]
        rate = (n1 - n0) / (t1 - t0)
    return {"rate": rate, "labels": posted, "joined": joined, "before": decided_before / events}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    events = args.events or (20_000 if args.quick else 60_000)
    counts = [1, 2] if args.quick else [1, 2, 3]
    from activestream.demo.broker import EmbeddedBroker
    from service_throughput import machine_info

    info = machine_info()
    rows = []
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="replicas-") as tmp:
        for n in counts:
            work = Path(tmp) / str(n)
            work.mkdir()
            result = run_group(broker.bootstrap_servers, n, events, work)
            rows.append((n, result))
            print(f"{n} replica(s): {result['rate']:,.0f} events/s, labels {result['labels']}", flush=True)
    info["load average at end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        "# One group, 1 to 3 replicas sharing one model",
        "",
        f"Generated by `python benchmarks/replicas.py{' --quick' if args.quick else ''}`: {events:,} events "
        "through the embedded broker, labels answered at once, the training log on. Protocol in the module "
        "docstring.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in info.items()),
        "",
        "| replicas | events/s (group, 20–80% of the stream) | decided before the last joined "
        "| labels learned by each replica | labels joined by each |",
        "|---|---|---|---|---|",
        *(
            f"| {n} | {r['rate']:,.0f} | {r['before']:.0%} | {r['labels']:,} | "
            f"{', '.join(f'{j:,.0f}' for j in r['joined'])} |"
            for n, r in rows
        ),
        "",
        "Every replica learns every label; each joins the labels it reads (its own requests' at once, "
        "the others' through the training log).",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"replicas{'_quick' if args.quick else ''}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
