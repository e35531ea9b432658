"""Reliability soak: crashes, broker outages, poison messages and overload, measured; the numbers behind
``benchmarks/results/reliability.md``.

Sections (``--only`` picks some; all by default):

- ``memory``: 1,000,000 events (``--quick``: 50,000) through the service loop in this process, on a
  *streaming* in-process transport (below), the default model and strategy (budget 10%,
  ``pending_max`` 20,000), a simulated annotator answering 90% of the
  requests after an exponential delay (mean 5 s of simulated time; the other 10% expire after the
  120 s TTL), checkpoints every 30 s of simulated time (the stream's clock: 1,000 events/s). RSS
  (``VmRSS``) is sampled 100 times and plotted: it must be flat once the pending store and the
  closed-id memory are full.
  Why not ``transport.memory.MemoryBroker``: it keeps every record it was given (tests inspect them), so
  its own memory grows with the stream; ``StreamTransport`` implements the same contract
  (``transport.base``) but generates events on the fly and keeps nothing it delivered.
- ``broker``: ``activestream run`` in a subprocess on the embedded Kafka-protocol broker (Tansu), a
  shorter stream (``--broker-events``, default 100,000; ``--quick`` 10,000) produced as fast as
  kafka-python goes, the simulated annotator answering every request; RSS of the service process
  sampled every 0.5 s and plotted; then a label flood: 20,000 (quick: 3,000) labels posted at once
  for asked events, timed until learned. The end state is verified exactly-once.
- ``kills``: the crash harness of ``tests/reliability`` — the service SIGKILLed ``--kills`` times
  (default 30; quick 5) at random moments (seeded), restarted each time, events streaming and the
  annotator answering throughout; twice: with 1 events partition and with 4 (events spread by key,
  labels keyed by event id on as many label partitions); then verified: every posted label learned
  exactly once, every ask remembered, no decision changed by a replay, no dead letter. Each restart's
  time to ``/readyz`` 200 is measured when the kill comes after it.
- ``outage``: every connection cut by a ``TcpProxy`` for ``--outage`` seconds (default 30; quick 10),
  once with resets (``drop_all``), once as a silent partition (``mode="blackhole"``), and once with
  resets while the service works through a backlog (records in flight when the cut comes; a 30 s
  outage outlasts the default ``flush_timeout_seconds``): ``/healthz`` must stay 200, ``/readyz`` turn
  503, the service recover without a restart, nothing lost.
- ``fuzz``: the property-based poison tests of ``tests/reliability/test_poison.py`` with many more
  examples: ``--fuzz`` parser cases per message type (default 20,000; quick 1,000) and a twentieth as
  many whole streams (20 to 300 messages each) through the loop.
- ``overload``: slow annotators (the pending store bounded, every request accounted for) and a label
  flood through the in-process loop (labels/s).

Results: ``benchmarks/results/reliability[_quick].json``, the RSS plots
``reliability_rss_{memory,broker}[_quick].png``, and the report ``reliability[_quick].md`` (rendered by
``benchmarks/reliability_report.py``, which can also re-render it from the JSON).

Run from the repository root, niced on a shared machine (loopback only)::

    PYTHONPATH=service nice -n 10 python benchmarks/soak.py --quick
    PYTHONPATH=service nice -n 10 python benchmarks/soak.py
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import math
import random
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "service"), str(ROOT / "tests" / "reliability"), str(ROOT / "benchmarks")]

import reliability_tools as rt  # noqa: E402

from activestream.config import Settings  # noqa: E402
from activestream.messages import Event, Label, to_json  # noqa: E402
from activestream.service import Service  # noqa: E402
from activestream.transport.base import (  # noqa: E402
    Admin,
    Consumer,
    Message,
    Producer,
    RebalanceCallback,
    TopicPartition,
)

RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = ("memory", "broker", "kills", "outage", "fuzz", "overload")
SEED = 20261121


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """``(VmRSS, VmHWM)`` of a process, in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, kb = line.split(":")
                values[key] = int(kb.split()[0]) / 1024
    return values.get("VmRSS", math.nan), values.get("VmHWM", math.nan)


def strategy_of(service: rt.ServiceProcess) -> str:
    """``model, measure/policy`` from the service's "service started" log line."""
    started = [e for e in service.logs() if e.get("message") == "service started"]
    return f"{service.options.get('model', 'logreg')}, {started[-1].get('strategy')}" if started else "?"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- memory: a streaming in-process transport -------------------------------------------------------------


class StreamTransport:
    """Events generated on the fly, labels from a simulated annotator; nothing delivered is kept.

    One events partition, one labels partition, one consumer (a fixed assignment), a simulated clock that
    advances ``1 / event_rate`` per event delivered. Requests produced are handed to the annotator at
    ``flush``; it answers ``answer_ratio`` of them after an exponential delay.
    """

    def __init__(
        self,
        settings: Settings,
        events: int,
        seed: int,
        event_rate: float = 1000.0,
        mean_delay_s: float = 5.0,
        answer_ratio: float = 0.9,
    ):
        self.settings = settings
        self.total = events
        self.seed = seed
        self.ms_per_event = 1000.0 / event_rate
        self.mean_delay_ms = mean_delay_s * 1000
        self.answer_ratio = answer_ratio
        self.now_ms = 1_700_000_000_000.0
        self.rng = random.Random(seed)
        self.events_tp = TopicPartition(settings.events_topic, 0)
        self.labels_tp = TopicPartition(settings.labels_topic, 0)
        self.position = {self.events_tp: 0, self.labels_tp: 0}
        self.committed_offsets: dict[TopicPartition, int] = {}
        self.labels: deque[bytes] = deque()  # posted, not consumed yet
        self.scheduled: list[tuple[float, int, bytes]] = []  # (due ms, seq, label)
        self.buffered: list[tuple[str, bytes]] = []  # produced, not flushed
        self.seq = itertools.count()
        self.weights = [random.Random(seed).gauss(0, 1) for _ in range(10)]
        self.requests = self.answered = self.dead_letters = 0
        self.on_assign: RebalanceCallback | None = None
        self.assigned = False

    def clock_ms(self) -> int:
        return int(self.now_ms)

    def features(self, i: int) -> dict[str, float]:
        rng = random.Random(self.seed * 1_000_003 + i)
        return {f"x{j}": rng.random() for j in range(10)}

    def truth(self, features: Mapping[str, float]) -> bool:
        return sum(w * features[f"x{j}"] for j, w in enumerate(self.weights)) > sum(self.weights) / 2

    @property
    def done(self) -> bool:
        return self.position[self.events_tp] >= self.total and not self.labels and not self.due_soon()

    def due_soon(self) -> bool:
        return bool(self.scheduled) and self.scheduled[0][0] <= self.now_ms + 600_000

    def _release_labels(self) -> None:
        import heapq

        while self.scheduled and self.scheduled[0][0] <= self.now_ms:
            self.labels.append(heapq.heappop(self.scheduled)[2])

    # Consumer
    def poll(self, max_records: int) -> list[Message]:
        if not self.assigned:
            self.assigned = True
            if self.on_assign is not None:
                self.on_assign({self.events_tp, self.labels_tp})
            return []
        self._release_labels()
        batch: list[Message] = []
        while self.labels and len(batch) < max_records // 2:
            offset = self.position[self.labels_tp]
            batch.append(Message(self.labels_tp.topic, 0, offset, self.labels.popleft()))
            self.position[self.labels_tp] = offset + 1
        while len(batch) < max_records and self.position[self.events_tp] < self.total:
            i = self.position[self.events_tp]
            event = Event(id=f"e{i:08d}", features=self.features(i))
            batch.append(Message(self.events_tp.topic, 0, i, to_json(event), key=event.id.encode()))
            self.position[self.events_tp] = i + 1
            self.now_ms += self.ms_per_event
        if not batch:
            self.now_ms += 1000  # idle: time passes, labels come due
        return batch

    # Producer
    def flush(self) -> None:
        import heapq

        buffered, self.buffered = self.buffered, []
        for topic, value in buffered:
            if topic == self.settings.requests_topic:
                self.requests += 1
                request = json.loads(value)
                if self.rng.random() < self.answer_ratio:
                    due = self.now_ms + self.rng.expovariate(1 / self.mean_delay_ms)
                    features = request["features"]
                    label = Label(request_id=request["request_id"], label=self.truth(features))
                    heapq.heappush(self.scheduled, (due, next(self.seq), to_json(label)))
                    self.answered += 1
            elif topic == self.settings.dead_letter_topic:
                self.dead_letters += 1


class _StreamConsumer(Consumer):
    def __init__(self, stream: StreamTransport):
        self.s = stream

    def subscribe(self, topics, on_assign=None, on_revoke=None, on_lost=None) -> None:
        self.s.on_assign = on_assign

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        return self.s.poll(max_records)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.s.committed_offsets.update(offsets)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        raise NotImplementedError("the soak never restarts")

    def committed(self, tp: TopicPartition) -> int | None:
        return self.s.committed_offsets.get(tp)

    def assignment(self) -> set[TopicPartition]:
        return {self.s.events_tp, self.s.labels_tp}

    def lag(self) -> dict[TopicPartition, int]:
        return {self.s.events_tp: self.s.total - self.s.position[self.s.events_tp], self.s.labels_tp: 0}

    def close(self) -> None:
        pass


class _StreamProducer(Producer):
    def __init__(self, stream: StreamTransport):
        self.s = stream

    def produce(self, topic: str, value: bytes, key: bytes | None = None, headers: Iterable = ()) -> None:
        self.s.buffered.append((topic, value))

    def flush(self, timeout_s: float) -> None:
        self.s.flush()

    def close(self) -> None:
        pass


class _StreamAdmin(Admin):
    def ensure_topics(self, topics: Sequence[str], partitions: int = 1) -> None:
        pass

    def is_reachable(self, timeout_s: float) -> bool:
        return True

    def close(self) -> None:
        pass


def memory_soak(events: int, workdir: Path) -> dict[str, Any]:
    settings = Settings(
        checkpoint_path=workdir / "memory" / "state.ckpt",
        checkpoint_interval_seconds=30,
        label_ttl_seconds=120,
        health_check_interval_seconds=60,
        pending_max=20_000,  # bounds pending requests and remembered closed ids: reached at ~20% of 1M
    )
    stream = StreamTransport(settings, events, SEED)
    service = Service(
        settings,
        _StreamConsumer(stream),
        _StreamProducer(stream),
        _StreamAdmin(),
        clock_ms=stream.clock_ms,
    )
    service.start()
    samples: list[dict[str, float]] = []
    every = max(1, events // 100)
    next_sample = 0
    started = time.perf_counter()
    while not stream.done:
        service.run_once()
        seen = stream.position[stream.events_tp]
        if seen >= next_sample:
            rss, hwm = rss_mb()
            samples.append(
                {
                    "events": seen,
                    "rss_mib": rss,
                    "pending": len(service.pending),
                    "closed": len(service.pending.closed),
                    "learned": service.model_version,
                    "wall_s": time.perf_counter() - started,
                }
            )
            next_sample += every
            if len(samples) % 10 == 1:
                log(f"memory: {seen:,} events, RSS {rss:.0f} MiB, pending {len(service.pending):,}")
    took = time.perf_counter() - started
    service.shutdown()
    rss, hwm = rss_mb()
    samples.append(
        {
            "events": events,
            "rss_mib": rss,
            "pending": len(service.pending),
            "closed": len(service.pending.closed),
            "learned": service.model_version,
            "wall_s": took,
        }
    )
    second_half = [s for s in samples if s["events"] >= events / 2]
    slope = _slope([s["events"] for s in second_half], [s["rss_mib"] for s in second_half]) * 100_000
    return {
        "transport": "in-process streaming transport (transport.base contract)",
        "strategy": f"{settings.model}, {service.learner.strategy}",
        "events": events,
        "seconds": took,
        "events_per_s": events / took,
        "requests": stream.requests,
        "labels_learned": service.model_version,
        "labels_posted": stream.answered,
        "learned_per_s": service.model_version / took,
        "dead_letters": stream.dead_letters,
        "expired_ttl": service.metrics.value(_metric("PENDING_EXPIRED"), reason="ttl"),
        "evicted": service.metrics.value(_metric("PENDING_EXPIRED"), reason="evicted"),
        "rss_start_mib": samples[0]["rss_mib"],
        "rss_at_20pct_mib": _at(samples, 0.2 * events),
        "rss_end_mib": samples[-1]["rss_mib"],
        "rss_peak_mib": hwm,
        "rss_slope_mib_per_100k_second_half": slope,
        "pending_max_seen": max(s["pending"] for s in samples),
        "checkpoint_bytes": settings.checkpoint_path.stat().st_size,
        "samples": samples,
    }


def _metric(name: str):
    from activestream.metrics import Metric

    return getattr(Metric, name)


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    if len(xs) < 2:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def _at(samples: Sequence[Mapping[str, float]], events: float) -> float:
    return min(samples, key=lambda s: abs(s["events"] - events))["rss_mib"]


# -- the broker: a service subprocess, RSS sampled; a label flood ----------------------------------------


class RssSampler(threading.Thread):
    def __init__(self, pid_of: Callable[[], int | None], every_s: float = 0.5):
        super().__init__(name="rss-sampler", daemon=True)
        self.pid_of, self.every_s = pid_of, every_s
        self.samples: list[tuple[float, float]] = []
        self.peak = 0.0
        self.stop_event = threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        while not self.stop_event.wait(self.every_s):
            pid = self.pid_of()
            if pid is None:
                continue
            with contextlib.suppress(OSError):
                rss, hwm = rss_mb(pid)
                self.samples.append((time.monotonic() - self.started_at, rss))
                self.peak = max(self.peak, hwm)


def broker_soak(events: int, flood: int, workdir: Path) -> dict[str, Any]:
    from activestream.demo.broker import EmbeddedBroker

    names = itertools.count()

    def name(prefix: str) -> str:
        return f"{prefix}-soak-{next(names)}"

    out: dict[str, Any] = {"events": events}
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        # 1. Throughput and memory: a stream as fast as kafka-python produces it, all requests answered.
        options = rt.service_options(bootstrap, name, workdir / "broker" / "state.ckpt", budget=0.1)
        rt.ensure_topics(bootstrap, rt.service_topics(options))
        service = rt.ServiceProcess(options, workdir / "broker.log")
        sampler = RssSampler(lambda: service.process.pid if service.alive else None)
        annotator = rt.Annotator(bootstrap, options["requests_topic"], options["labels_topic"], seed=SEED)
        service.start()
        sampler.start()
        try:
            service.wait_assigned()
            annotator.start()
            streamer = rt.EventStreamer(bootstrap, options["events_topic"], 1e9, seed=SEED, limit=events)
            started = time.monotonic()
            streamer.start()
            sent = streamer.stop(drain=True)
            produced_s = time.monotonic() - started
            events_tp = TopicPartition(options["events_topic"], 0)
            rt.wait_for(
                lambda: (
                    service.check_alive()
                    or rt.committed(bootstrap, options["group_id"]).get(events_tp) == sent
                ),
                3600,
                "every event decided",
                0.5,
            )
            decided_s = time.monotonic() - started
            labels_tp = TopicPartition(options["labels_topic"], 0)

            def settled() -> bool:
                service.check_alive()
                offsets = rt.committed(bootstrap, options["group_id"])
                return (
                    annotator.caught_up
                    and annotator.waiting == 0
                    and offsets.get(labels_tp, 0) == len(annotator.stats.posted)
                )

            rt.wait_for(settled, 600, "every label learned", 1.0)
            stats = annotator.stop()
            assert service.terminate() == 0, service.tail()
        finally:
            sampler.stop_event.set()
            annotator.stop_event.set()
            service.ensure_stopped()
        verdict = rt.verify(bootstrap, options, stats.posted, sent)
        out.update(
            {
                "strategy": strategy_of(service),
                "produce_s": produced_s,
                "decide_s": decided_s,
                "events_per_s": sent / decided_s,
                "labels": len(stats.posted),
                "verdict": verdict.as_dict(),
                "rss_peak_mib": sampler.peak,
                "rss_samples": sampler.samples,
            }
        )
        log(f"broker: {sent:,} events in {decided_s:.1f} s, peak RSS {sampler.peak:.0f} MiB")

        # 2. A label flood: `flood` events all asked, then all their labels posted at once.
        options = rt.service_options(
            bootstrap,
            name,
            workdir / "flood" / "state.ckpt",
            budget=1.0,
            policy="split",
            pending_max=max(100_000, 2 * flood),
        )
        rt.ensure_topics(bootstrap, rt.service_topics(options))
        service = rt.ServiceProcess(options, workdir / "flood.log")
        service.start()
        try:
            service.wait_assigned()
            streamer = rt.EventStreamer(bootstrap, options["events_topic"], 1e9, seed=SEED, limit=flood)
            streamer.start()
            streamer.stop(drain=True)
            events_tp = TopicPartition(options["events_topic"], 0)
            rt.wait_for(
                lambda: (
                    service.check_alive()
                    or rt.committed(bootstrap, options["group_id"]).get(events_tp) == flood
                ),
                600,
                "every flood event decided",
                0.5,
            )
            requests = [
                json.loads(r.value) for r in rt.read_all(bootstrap, options["requests_topic"], timeout_s=120)
            ]
            asked = {r["request_id"]: r["event_id"] for r in requests}
            from kafka import KafkaProducer

            producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
            started = time.monotonic()
            for request_id, event_id in asked.items():
                label = Label(
                    request_id=request_id, label=rt.truth_for(rt.features_for(int(event_id[1:]), SEED))
                )
                producer.send(options["labels_topic"], to_json(label), key=event_id.encode())
            producer.flush(120)
            producer.close()
            posted_s = time.monotonic() - started
            labels_tp = TopicPartition(options["labels_topic"], 0)
            rt.wait_for(
                lambda: (
                    service.check_alive()
                    or rt.committed(bootstrap, options["group_id"]).get(labels_tp) == len(asked)
                ),
                600,
                "every flood label learned",
                0.2,
            )
            learned_s = time.monotonic() - started
            assert service.terminate() == 0, service.tail()
        finally:
            service.ensure_stopped()
        state = rt.load_checkpoint(options["checkpoint_path"])
        out["flood"] = {
            "labels": len(asked),
            "post_s": posted_s,
            "learned_s": learned_s,
            "labels_per_s": len(asked) / learned_s,
            "learned": state.model_version,
            "learned_twice": state.model_version - rt.learned_count(state),
            "lost": len(set(asked) - rt.learned_among(state, asked)),
        }
        log(f"broker flood: {out['flood']}")
    return out


# -- kills and outages --------------------------------------------------------------------------------------


def kill_soak(kills: int, workdir: Path, partitions: int = 1, rate_per_s: float = 150) -> dict[str, Any]:
    """``kills`` SIGKILLs at seeded random moments: a third during start-up, the others 0.1–3 s after
    ``/readyz`` turned 200 (the time from the restart to that is recorded)."""
    from activestream.demo.broker import EmbeddedBroker

    rng = random.Random(SEED)
    names = itertools.count()
    directory = workdir / f"kills-{partitions}"
    directory.mkdir(parents=True, exist_ok=True)
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        options = rt.service_options(
            bootstrap, lambda p: f"{p}-kills-{next(names)}", directory / "state.ckpt", budget=0.2
        )
        rt.ensure_service_topics(bootstrap, options, partitions)
        streamer = rt.EventStreamer(bootstrap, options["events_topic"], rate_per_s=rate_per_s, seed=SEED)
        annotator = rt.Annotator(bootstrap, options["requests_topic"], options["labels_topic"], seed=SEED)
        service = rt.ServiceProcess(options, directory / "service.log")
        streamer.start()
        annotator.start()
        moments: list[str] = []
        ready_s: list[float] = []  # restart to /readyz 200, for the restarts that got there
        started = time.monotonic()

        def until_ready() -> None:
            restarted = time.monotonic()
            port = service.http_port()
            rt.wait_for(
                lambda: service.check_alive() or _ready(port), 120, "/readyz turned 200 after a restart"
            )
            ready_s.append(time.monotonic() - restarted)

        try:
            for k in range(kills):
                service.start()
                early = rng.random() < 1 / 3
                if not early:
                    until_ready()
                delay = rng.uniform(0.1, 3.0)
                time.sleep(delay)
                service.kill()
                moments.append(("start+" if early else "ready+") + f"{delay:.2f}s")
                if k % 5 == 4:
                    log(f"kills ({partitions} partitions): {k + 1} of {kills}")
            service.start()
            until_ready()
            sent = streamer.stop()
            quiet: list[bool] = []

            def settled() -> bool:
                service.check_alive()
                offsets = rt.committed(bootstrap, options["group_id"])
                quiet.append(
                    rt.committed_total(offsets, options["events_topic"]) == sent
                    and annotator.caught_up
                    and annotator.waiting == 0
                    and rt.committed_total(offsets, options["labels_topic"]) == len(annotator.stats.posted)
                )
                return len(quiet) > 1 and quiet[-1] and quiet[-2]

            rt.wait_for(settled, 600, "the service caught up", 1.0)
            stats = annotator.stop()
            strategy = strategy_of(service)
            assert service.terminate() == 0, service.tail()
        finally:
            streamer.stop_event.set()
            annotator.stop_event.set()
            service.ensure_stopped()
        verdict = rt.verify(bootstrap, options, stats.posted, sent)
    out = {
        "partitions": partitions,
        "strategy": strategy,
        "kills": len(moments),
        "moments": moments,
        "seconds": time.monotonic() - started,
        "ready_after_restart_s": ready_s,
        "verdict": verdict.as_dict(),
        "requests_seen": stats.requests_seen,
        "bad_request_ids": len(stats.bad_ids),
    }
    log(f"kills ({partitions} partitions): {out['kills']} kills, {verdict.problems or 'exactly once'}")
    return out


def _ready(port: int) -> bool:
    try:
        return rt.get(port, "/readyz")[0] == 200
    except OSError:
        return False


def kill_runs(kills: int, workdir: Path, partitions: Sequence[int] = (1, 4)) -> dict[str, Any]:
    """``kill_soak`` once per partition count; a failed run is recorded, the next one still runs."""
    runs: list[dict[str, Any]] = []
    for n in partitions:
        try:
            runs.append(kill_soak(kills, workdir, n))
        except Exception as error:
            runs.append({"partitions": n, "error": f"{type(error).__name__}: {error}"})
            runs[-1]["trace"] = traceback.format_exc()
            log(f"kills ({n} partitions) FAILED: {error}")
    out: dict[str, Any] = {"kills": sum(r.get("kills", 0) for r in runs), "runs": runs}
    failed = [r for r in runs if "error" in r]
    if failed:  # the section fails (soak exits 1) and the report shows each run's error
        out["error"] = "; ".join(f"{r['partitions']} partitions: {r['error']}" for r in failed)
    return out


def outage_soak(outage_s: float, mode: str, workdir: Path, backlog: int = 0) -> dict[str, Any]:
    from activestream.demo.broker import EmbeddedBroker
    from activestream.demo.proxy import TcpProxy

    names = itertools.count()
    port = rt.free_port()
    directory = workdir / f"outage-{mode}-{backlog}"
    directory.mkdir(parents=True, exist_ok=True)
    with TcpProxy("127.0.0.1", port) as proxy, EmbeddedBroker(port=port, advertised_port=proxy.port):
        seen = rt.run_outage(
            proxy,
            directory,
            lambda p: f"{p}-outage-{next(names)}",
            outage_s,
            mode=mode,
            backlog=backlog,
            cut_after_s=1.0 if backlog else 5.0,
        )
    verdict = seen.pop("verdict")
    during, after = seen.pop("during"), seen.pop("after")
    out = {
        "mode": mode + (f", mid-backlog of {backlog:,} events" if backlog else ""),
        "outage_s": outage_s,
        "backlog": backlog,
        "healthz_during": sorted({h for _, h, _ in during}),
        "readyz_during": sorted({r for _, _, r in during}),
        "probes_during": len(during),
        "healthy_after": all(h == 200 and r == 200 for _, h, r in after),
        **seen,
        "verdict": verdict.as_dict(),
    }
    log(f"outage ({mode}, {outage_s:g} s): {out}")
    return out


# -- fuzz and overload -----------------------------------------------------------------------------------


def fuzz_soak(cases: int, streams: int, workdir: Path) -> dict[str, Any]:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from test_poison import check_event, check_label, check_stream, events, labels

    # Longer streams than the CI test's (up to 60 messages): 20 to 300.
    stream_strategy = st.lists(
        st.one_of(events().map(lambda c: ("events", *c)), labels().map(lambda c: ("labels", *c))),
        min_size=20,
        max_size=300,
    )

    counts = {"events": 0, "labels": 0, "streams": 0, "stream_messages": 0}
    reasons: dict[str, int] = {}
    common = {"deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}

    @settings(max_examples=cases, **common)
    @given(events())
    def fuzz_events(case):
        counts["events"] += 1
        reasons[str(case[1])] = reasons.get(str(case[1]), 0) + 1
        check_event(case)

    @settings(max_examples=cases, **common)
    @given(labels())
    def fuzz_labels(case):
        counts["labels"] += 1
        check_label(case)

    @settings(max_examples=streams, **common)
    @given(stream_strategy)
    def fuzz_streams(stream):
        counts["streams"] += 1
        counts["stream_messages"] += len(stream)
        check_stream(workdir / "fuzz" / str(counts["streams"]), stream)

    started = time.monotonic()
    failures = []
    for test in (fuzz_events, fuzz_labels, fuzz_streams):
        try:
            test()
        except Exception:
            failures.append(traceback.format_exc(limit=3))
    out = {**counts, "event_reasons": reasons, "failures": failures, "seconds": time.monotonic() - started}
    log(f"fuzz: {counts}, {len(failures)} failures")
    return out


def overload_soak(flood: int, workdir: Path) -> dict[str, Any]:
    import test_overload

    out: dict[str, Any] = {}
    # Slow annotators (the test, at the same scale): the store stays bounded, every request accounted for.
    started = time.monotonic()
    test_overload.test_slow_annotators_the_pending_store_stays_bounded_and_every_request_is_accounted_for(
        workdir / "slow"
    )
    out["slow_annotators"] = {"passed": True, "seconds": time.monotonic() - started}
    # A label flood through the loop.
    run = test_overload.Run(workdir / "flood-mem", pending_max=flood, max_poll_records=500)
    run.events(range(flood))
    requests = run.new_requests()
    run.answer(requests)
    started = time.perf_counter()
    run.drain()
    took = time.perf_counter() - started
    out["label_flood"] = {
        "labels": len(requests),
        "learned": run.service.model_version,
        "seconds": took,
        "labels_per_s": run.service.model_version / took,
    }
    log(f"overload: {out}")
    return out


# -- main -------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI smoke runs")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run these sections only")
    parser.add_argument("--events", type=int, help="memory soak events (default 1,000,000; quick 50,000)")
    parser.add_argument(
        "--broker-events", type=int, help="broker soak events (default 100,000; quick 10,000)"
    )
    parser.add_argument("--kills", type=int, help="SIGKILLs (default 30; quick 5)")
    parser.add_argument("--outage", type=float, help="outage length, seconds (default 30; quick 10)")
    parser.add_argument("--fuzz", type=int, help="parser fuzz cases per type (default 20,000; quick 1,000)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = {
        "events": args.events or (50_000 if quick else 1_000_000),
        "broker_events": args.broker_events or (10_000 if quick else 100_000),
        "flood": 3_000 if quick else 20_000,
        "kills": args.kills if args.kills is not None else (5 if quick else 30),
        "outage": args.outage or (10.0 if quick else 30.0),
        "fuzz": args.fuzz or (1_000 if quick else 20_000),
    }
    sections = args.only or SECTIONS
    suffix = "_quick" if quick else ""
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"reliability{suffix}.json"
    results: dict[str, Any] = json.loads(json_path.read_text()) if json_path.exists() and args.only else {}
    from reliability_report import machine_info, write_report

    results["machine"] = machine_info()
    results["sizes"] = sizes
    # With --only the other sections are an earlier run's: the report says which run each one is from.
    ran = f"{results['machine']['date']}, commit {results['machine']['commit']}"
    results["ran"] = {**results.get("ran", {}), **{section: ran for section in sections}}
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="activestream-soak-") as tmp:
        workdir = Path(tmp)
        runs: dict[str, Callable[[], Any]] = {
            "memory": lambda: memory_soak(sizes["events"], workdir),
            "broker": lambda: broker_soak(sizes["broker_events"], sizes["flood"], workdir),
            "kills": lambda: kill_runs(sizes["kills"], workdir),
            "outage": lambda: [
                outage_soak(sizes["outage"], "reset", workdir),
                outage_soak(sizes["outage"], "blackhole", workdir),
                # Busy: the outage hits while a backlog is worked through, records in flight, and
                # outlasts flush_timeout_seconds (30 s by default) when it lasts 30 s.
                outage_soak(sizes["outage"], "reset", workdir, backlog=20_000 if quick else 100_000),
            ],
            "fuzz": lambda: fuzz_soak(sizes["fuzz"], max(10, sizes["fuzz"] // 20), workdir),
            "overload": lambda: overload_soak(sizes["flood"] * 2, workdir),
        }
        for section in sections:
            log(f"section {section}...")
            started = time.monotonic()
            try:
                results[section] = runs[section]()
            except Exception as error:  # recorded: the report shows a failed section, never hides it
                results[section] = {
                    "error": f"{type(error).__name__}: {error}",
                    "trace": traceback.format_exc(),
                }
                log(f"section {section} FAILED: {error}")
            if isinstance(results[section], dict):
                results[section]["section_seconds"] = time.monotonic() - started
            json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    report = args.out / f"reliability{suffix}.md"
    write_report(results, report, suffix)
    log(f"wrote {report}")
    failed = [s for s in sections if isinstance(results.get(s), dict) and "error" in results[s]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
