"""How long a new replica takes to catch up with the training log, as a function of the log's length.

With ``ACTIVESTREAM_TRAINING_TOPIC`` every replica learns every labeled example from one log; a replica
that starts without a checkpoint reads that log from its start before its model is the group's. This
measures that catch-up.

Protocol. A training topic is preloaded with N labeled examples as the group writes them: for each, the
request (an ``ask`` record, written when it was asked) and then the example (written by the replica that
joined its label): 2N records (Hyperplane, 10 float features, the true label, the decision data of an
informative ask). A fresh service (default settings: drift arms around ``logreg``, label-free detector,
stopping criteria; no checkpoint) starts and runs its loop with no events until its engine has read all
2N records and learned the N examples; timed from ``start()`` (group join
included) to that moment, and the loop thread's CPU over the same span. Three transports: the embedded
Tansu broker through kafka-python and through confluent-kafka (``activestream.app.build_service``), and
the in-memory broker (the engine's own cost, no client). Medians of ``--repeats`` runs, alternating.

    python benchmarks/training_log.py            # N = 1,000, 10,000, 50,000
    python benchmarks/training_log.py --quick    # N = 1,000, 5,000; results to training_log_quick.md

Writes ``benchmarks/results/training_log[_quick].md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TRANSPORTS = ("kafka-python", "confluent", "memory")


def examples(n: int, seed: int = 1) -> list[bytes]:
    """The training-log records of N labeled examples as the group writes them: request, then example."""
    from activestream.datasets import make_stream
    from activestream.engine.training_log import ask_record, training_record
    from activestream.join import PendingEntry
    from activestream.messages import request_id_for

    records = []
    for i, (x, y) in enumerate(make_stream("hyperplane", n=n, seed=seed)):
        event_id = f"ev-{i:07d}"
        entry = PendingEntry(
            request_id_for(event_id), event_id, x, i, i + 1, "informative", None, ask_proba=0.5
        )
        records.append(ask_record(entry, "training").value)
        records.append(training_record(entry, y, "training").value)
    return records


def catch_up(
    transport: str, bootstrap: str, topic: str, n: int, memory_log: list[bytes]
) -> tuple[float, float]:
    """Seconds and loop-thread CPU seconds for a fresh service to learn the first ``n`` examples (scaled
    from what it learned by the read that reached them)."""
    from activestream.config import Settings
    from activestream.service import Service

    with tempfile.TemporaryDirectory(prefix="training-log-") as tmp:
        options = {
            "training_topic": topic,
            "checkpoint_path": Path(tmp) / "c.ckpt",
            "poll_timeout_seconds": 0.05,
            "group_id": f"catch-up-{time.monotonic_ns()}",
        }
        if transport == "memory":
            from activestream.transport.memory import MemoryBroker

            broker = MemoryBroker()
            producer = broker.producer()
            for value in memory_log[: 2 * n]:
                producer.produce(topic, value)
            producer.flush(1.0)
            settings = Settings(**options)
            service = Service(
                settings, broker.consumer(settings.group_id), broker.producer(), reader=broker.reader()
            )
        else:
            from activestream.app import build_service

            service = build_service(Settings(**options, bootstrap_servers=bootstrap, transport=transport))
        started, cpu = time.perf_counter(), time.thread_time()
        service.start()
        while service.engine.state.training_offset < 2 * n:
            service.run_once()
        seconds, cpu_s = time.perf_counter() - started, time.thread_time() - cpu
        # A read may go past the 2N-th record (by less than one read): the figures per example use what
        # was learned.
        learned = service.model_version
        assert n <= learned <= n + service.settings.max_poll_records, (learned, n)
        service.shutdown()
    return seconds * n / learned, cpu_s * n / learned


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    lengths = [1_000, 5_000] if args.quick else [1_000, 10_000, 50_000]
    repeats = 1 if args.quick else args.repeats
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from activestream.demo.broker import EmbeddedBroker
    from service_throughput import machine_info

    info = machine_info()
    log = examples(max(lengths))
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic("training", 1, 1)])  # (Tansu would create one of 4 partitions)
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
        for value in log:
            producer.send("training", value)
        producer.flush(120)
        producer.close()
        for _ in range(repeats):
            for n in lengths:
                for transport in TRANSPORTS:
                    seconds, cpu = catch_up(transport, bootstrap, "training", n, log)
                    results.setdefault((transport, n), []).append((seconds, cpu))
                    print(f"{transport}, {n:,} examples: {seconds:.2f} s, CPU {cpu:.2f} s", flush=True)
    info["load average at end"] = ", ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
    lines = [
        "# A new replica catching up with the training log",
        "",
        f"Generated by `python benchmarks/training_log.py{' --quick' if args.quick else ''}` ({repeats} "
        "repeat(s), medians): a fresh service with default settings reads the first 2N records of a "
        "training topic (N requests and their N labeled examples) and learns the N examples, on the "
        "embedded Tansu broker (or in memory), from `start()`, group join included. Protocol in the module "
        "docstring.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in info.items()),
        "",
        "| transport | labeled examples (N) | seconds to catch up | examples/s | loop CPU µs per example |",
        "|---|---|---|---|---|",
    ]
    for transport in TRANSPORTS:
        for n in lengths:
            runs = results[(transport, n)]
            seconds = statistics.median(s for s, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            lines.append(
                f"| {transport} | {n:,} | {seconds:.2f} | {n / seconds:,.0f} | {cpu / n * 1e6:.0f} |"
            )
    lines += [
        "",
        "Catch-up time grows linearly with the log: each example is one learn through both drift arms (the "
        "same work as a label joined live), each request a parse and an entry in the group's open requests. "
        "A replica with a checkpoint reads only the log past it.",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"training_log{'_quick' if args.quick else ''}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
