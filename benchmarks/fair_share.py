"""What the confluent consumer's fair share costs and buys: the service's rate with labels flowing during a
backlog, and how long a label waits behind the backlog, for several shares.

Protocol. An embedded broker (Tansu, in memory, localhost) is preloaded with ``--events`` events (default
100,000) of the ``hyperplane`` stream. For each share in ``--shares`` (``FairShare``'s ``share``: how many
messages of the other partitions a partition with unread records waits behind before they are paused),
``--repeats`` times, alternating (the events topic's name sorts before the labels topic's, as ``events``
and ``labels`` do: with the opposite order the embedded broker serves the labels first and nothing is
starved, so the share hardly matters):

- **rate**: a ``Service`` in this process with the default settings and the confluent transport reads the
  whole topic (``service_throughput.matrix_run``: warm model, requests produced, commits every batch), with
  annotators in a process of their own answering the requests at 100 labels/s, and at once (labels at
  the budget rate); and without labels, for reference;
- **wait**: a bare confluent consumer on a backlog of 200,000 small events and an empty labels topic, 25 µs
  of work per event; 50 labels are produced once 10,000 events were read; the events read after that, up
  to the batch the first label came in (the measure of
  ``test_labels_are_served_within_a_bound_during_an_events_backlog``).

Writes ``benchmarks/results/fair_share.md``. Run from the repository root, with the project and its
``fast`` extra installed::

    python benchmarks/fair_share.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The wait measurement: events in the backlog, read before the labels are produced, labels produced.
BACKLOG, START_AFTER, LABELS = 200_000, 10_000, 50
#: Annotators' label rates: 100 labels/s, at once (``0``), none (``None``).
REGIMES = {"100 labels/s": 100.0, "at once": 0.0, "no labels": None}


def with_share(share: int) -> None:
    """Make every confluent consumer created from now on use ``share``."""
    from activestream.transport.confluent.fairness import FairShare

    defaults = FairShare.__init__.__defaults__ or ()
    FairShare.__init__.__defaults__ = (share, *defaults[1:])


def service_rate(
    bootstrap: str, topic: str, n: int, inputs: tuple, workdir: Path, rate: float | None
) -> float:
    """Events/s of one service run over the preloaded topic (annotators at ``rate``)."""
    from service_throughput import matrix_run

    learner, truth = inputs
    run = matrix_run(bootstrap, topic, n, learner, truth, workdir, ("confluent", "auto", 500, rate))
    return run["measured"].rate


def label_wait(bootstrap: str) -> int:
    """Events read after the labels were produced, before the first label (see the module docstring)."""
    from activestream.transport.confluent import (
        ConfluentAdminAdapter,
        ConfluentConsumerAdapter,
        ConfluentProducerAdapter,
    )

    events, labels = (f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("fair-events", "fair-labels"))
    admin = ConfluentAdminAdapter(bootstrap_servers=bootstrap)
    admin.ensure_topics([events, labels])
    admin.close()
    producer = ConfluentProducerAdapter(bootstrap_servers=bootstrap)
    for i in range(BACKLOG):
        producer.produce(events, b"%08d" % i + b"-" * 99)
    producer.flush(30.0)
    consumer = ConfluentConsumerAdapter(
        bootstrap_servers=bootstrap, group_id=f"fair-{uuid.uuid4().hex[:8]}", session_timeout_ms=6000
    )
    consumer.subscribe([events, labels])
    try:
        return _events_before_first_label(consumer, producer, events, labels, _busy(25e-6))
    finally:
        consumer.close()
        producer.close()


def _busy(seconds: float) -> Callable[[], None]:
    def work() -> None:  # the service's work on an event, so that the prefetch fills up
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            pass

    return work


def _events_before_first_label(consumer, producer, events: str, labels: str, work: Callable[[], None]) -> int:
    read, sent_at, deadline = 0, None, time.monotonic() + 120
    while time.monotonic() < deadline:
        for message in consumer.poll(1.0, 500):
            if message.topic == labels:
                assert sent_at is not None, "a label before any was produced"
                return read - sent_at
            read += 1
            work()
        if sent_at is None and read >= START_AFTER:
            for i in range(LABELS):
                producer.produce(labels, b'{"event_id": "e%d", "label": 1}' % i)
            producer.flush(10.0)
            sent_at = read
    raise TimeoutError(f"no label within 120 s ({read} events read)")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def report(path: Path, args: argparse.Namespace, info: dict, rates: dict, waits: dict) -> None:
    lines = [
        "# The confluent consumer's fair share: the rate with labels flowing, and a label's wait",
        "",
        f"Generated by `python benchmarks/fair_share.py` ({args.repeats} alternating repeats, medians with "
        f"min–max; {args.events:,} events; protocol in the module docstring).",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        "",
        "| share | events/s, 100 labels/s | events/s, every request answered at once | events/s, no labels "
        "| events read before the first label |",
        "|---|---|---|---|---|",
    ]
    for share in args.shares:
        cells = [_spread(rates[share, regime]) for regime in REGIMES]
        lines.append(f"| {share:,} | {' | '.join(cells)} | {_spread(waits[share])} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--shares", type=lambda s: [int(x) for x in s.split(",")], default=[2000, 10000, 50000]
    )
    parser.add_argument("--out", default="fair_share.md", help="file name in benchmarks/results/")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from activestream.demo.broker import EmbeddedBroker
    from service_throughput import machine_info, matrix_inputs, preload

    info = machine_info()
    learner, records, truth = matrix_inputs(args.events, 1)
    rates: dict[tuple[int, str], list[float]] = {}
    waits: dict[int, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        # Before the labels topics (``bench-labels-…``) in name order, as the default names are: the order
        # librdkafka lists partitions in its fetches, which the embedded broker fills in that order.
        servers, topic = broker.bootstrap_servers, "bench-events"
        preload(servers, topic, records)
        for repeat in range(args.repeats):
            for share in args.shares:
                with_share(share)
                for regime, rate in REGIMES.items():
                    rates.setdefault((share, regime), []).append(
                        service_rate(servers, topic, args.events, (learner, truth), Path(tmp), rate)
                    )
                waits.setdefault(share, []).append(label_wait(servers))
                figures = ", ".join(f"{regime} {rates[share, regime][-1]:,.0f}/s" for regime in REGIMES)
                print(
                    f"repeat {repeat + 1}, share {share:,}: {figures}; label after {waits[share][-1]:,}",
                    flush=True,
                )
    out = ROOT / "benchmarks" / "results" / args.out
    report(out, args, info, rates, waits)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
