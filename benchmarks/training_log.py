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
included) to that moment, and the loop thread's CPU over the same span. Twice: reading the log from its
start, and with a snapshot topic holding the group's state ``snapshot_every`` records before the end (the
newest snapshot is at most that far behind; what an engine that read those records publishes). From the
log, the figures are scaled to N examples (a read may go past the 2N-th record); from a snapshot they are
not (the restore is a fixed cost, the overshoot at most one read). Three transports: the embedded
Tansu broker through kafka-python and through confluent-kafka (``activestream.app.build_service``), and
the in-memory broker (the engine's own cost, no client). Medians of ``--repeats`` runs, alternating.

    python benchmarks/training_log.py            # N = 1,000, 10,000, 50,000
    python benchmarks/training_log.py --quick    # N = 1,000, 8,000; results to training_log_quick.md

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


def snapshot_at(log: list[bytes], records: int, topic: str) -> list:
    """The snapshot records of the group's state after the first ``records`` records of ``log`` (as the
    replica holding events partition 0 publishes it)."""
    from activestream.checkpoint import encode_state
    from activestream.config import Settings
    from activestream.engine import Engine
    from activestream.snapshots import snapshot_records
    from activestream.transport.base import Message

    engine = Engine(Settings(training_topic="training"), replica="writer")
    for offset, value in enumerate(log[:records]):
        engine.on_training(Message("training", 0, offset, value), offset, now_ms=0)
    data = encode_state(engine.group_state(0))
    return snapshot_records(
        data, topic=topic, training_offset=records, replica="writer", slot=0, created_at_ms=0
    )


def catch_up(
    transport: str,
    bootstrap: str,
    topic: str,
    n: int,
    memory_log: list[bytes],
    snapshot: tuple[str, list] | None = None,
) -> tuple[float, float, int]:
    """Seconds and loop-thread CPU seconds for a fresh service to learn the first ``n`` examples, and the
    log offset it started at. With ``snapshot`` (its topic and records) it starts from that snapshot."""
    from activestream.config import Settings
    from activestream.service import Service

    with tempfile.TemporaryDirectory(prefix="training-log-") as tmp:
        options = {
            "training_topic": topic,
            "checkpoint_path": Path(tmp) / "c.ckpt",
            "poll_timeout_seconds": 0.05,
            "group_id": f"catch-up-{time.monotonic_ns()}",
            **({"snapshot_topic": snapshot[0]} if snapshot else {}),
        }
        if transport == "memory":
            from activestream.transport.memory import MemoryBroker

            broker = MemoryBroker()
            producer = broker.producer()
            for value in memory_log[: 2 * n]:
                producer.produce(topic, value)
            for record in snapshot[1] if snapshot else ():
                producer.produce(record.topic, record.value, record.key, record.headers)
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
        start_offset = service.engine.state.training_offset
        while service.engine.state.training_offset < 2 * n:
            service.run_once()
        seconds, cpu_s = time.perf_counter() - started, time.thread_time() - cpu
        learned = service.model_version
        assert n <= learned <= n + service.settings.max_poll_records, (learned, n)
        service.shutdown()
    if snapshot:  # (unscaled: the restore is a fixed cost; the read past 2N is at most one read)
        return seconds, cpu_s, start_offset
    # A read may go past the 2N-th record (by less than one read): scaled to the N examples.
    return seconds * n / learned, cpu_s * n / learned, start_offset


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    lengths = [1_000, 8_000] if args.quick else [1_000, 10_000, 50_000]
    repeats = 1 if args.quick else args.repeats
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from activestream.config import Settings
    from activestream.demo.broker import EmbeddedBroker
    from service_throughput import machine_info

    info = machine_info()
    log = examples(max(lengths))
    every = Settings().snapshot_every
    # The newest snapshot a new replica finds is up to ``snapshot_every`` records behind the log's end:
    # measured at that worst case (none for a log shorter than that).
    snapshots = {n: max(0, 2 * n - every) for n in lengths}
    snapshot_records_of = {n: snapshot_at(log, at, f"snapshots-{n}") for n, at in snapshots.items() if at}
    results: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        topics = ["training", *(f"snapshots-{n}" for n in snapshot_records_of)]
        admin.create_topics([NewTopic(t, 1, 1) for t in topics])  # (Tansu would create 4 partitions)
        admin.close()
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, linger_ms=20, acks="all", max_request_size=2**20
        )
        for value in log:
            producer.send("training", value)
        for records in snapshot_records_of.values():
            for record in records[:-1]:
                producer.send(record.topic, record.value, record.key, list(record.headers))
            producer.flush(120)
            manifest = records[-1]  # alone in its batch (see ``activestream.snapshots``)
            producer.send(manifest.topic, manifest.value, manifest.key, list(manifest.headers))
        producer.flush(120)
        producer.close()
        for _ in range(repeats):
            for n in lengths:
                for transport in TRANSPORTS:
                    for start in ("log", "snapshot"):
                        records = snapshot_records_of.get(n)
                        if start == "snapshot" and records is None:
                            continue
                        snapshot = (records[0].topic, records) if start == "snapshot" else None
                        seconds, cpu, at = catch_up(transport, bootstrap, "training", n, log, snapshot)
                        assert at == (snapshots[n] if snapshot else 0), (at, n)
                        results.setdefault((start, transport, n), []).append((seconds, cpu))
                        print(f"{transport}, {n:,} examples, from the {start}: {seconds:.2f} s", flush=True)
    info["load average at end"] = ", ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
    lines = [
        "# A new replica catching up with the training log",
        "",
        f"Generated by `python benchmarks/training_log.py{' --quick' if args.quick else ''}` ({repeats} "
        "repeat(s), medians): a fresh service with default settings reads the first 2N records of a "
        "training topic (N requests and their N labeled examples) and learns the N examples, on the "
        "embedded Tansu broker (or in memory), from `start()`, group join included: from the log's start "
        f"(no snapshot topic), or from a snapshot {every:,} records behind (`ACTIVESTREAM_SNAPSHOT_TOPIC`; "
        f"the newest snapshot is at most `snapshot_every` = {every:,} records behind the log's end). "
        "Protocol in the module docstring.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in info.items()),
        "",
        "| start | transport | labeled examples (N) | snapshot at record | snapshot bytes "
        "| seconds to catch up | loop CPU s |",
        "|---|---|---|---|---|---|---|",
    ]
    for start in ("log", "snapshot"):
        for transport in TRANSPORTS:
            for n in lengths:
                runs = results.get((start, transport, n))
                if not runs:
                    continue
                seconds = statistics.median(s for s, _ in runs)
                cpu = statistics.median(c for _, c in runs)
                at = snapshots[n] if start == "snapshot" else 0
                size = sum(len(r.value) for r in snapshot_records_of[n][:-1]) if at else 0
                lines.append(
                    f"| {start} | {transport} | {n:,} | {at:,} | {size:,} | {seconds:.2f} | {cpu:.2f} |"
                )
    lines += [
        "",
        "From the log's start, catch-up time grows linearly with the log: each example is one learn "
        "through both drift arms (the same work as a label joined live), each request a parse and an "
        "entry in the group's open requests. From a snapshot it is the snapshot's restore (its size grows "
        "with the model and the memory of the log's ids, bounded by `ACTIVESTREAM_PENDING_MAX`) plus at "
        "most `snapshot_every` records of the log, whatever the log's length. A replica with a checkpoint "
        "reads only the log past it.",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"training_log{'_quick' if args.quick else ''}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
