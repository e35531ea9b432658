"""The service end to end on a real broker (the embedded Tansu), over the Kafka protocol.

What the in-memory tests of the loop cannot show: the kafka-python adapters, group joins, commits and
seeks on a real broker, restarts (graceful, crashed in-process, SIGKILLed), signals, the HTTP endpoints
while the broker comes and goes, and the CLI helpers.

Every test uses its own topics, group and checkpoint, so the tests share the session broker without
interfering. Group joins take about half the session timeout on Tansu (~3 s): tests wait on conditions
with deadlines, never on fixed sleeps. The service loop runs on its own thread (its consumer is touched
by that thread only); the tests read the topics with their own consumers, assigned to the partitions
rather than joined to a group (no join to wait for).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from prometheus_client.parser import text_string_to_metric_families
from river import base, naive_bayes

from activestream import __version__
from activestream.app import build_service
from activestream.checkpoint import load_checkpoint
from activestream.config import Settings, env_var
from activestream.decide.policies import Split
from activestream.demo.broker import EmbeddedBroker
from activestream.http import HttpServer
from activestream.learner import ActiveLearner
from activestream.messages import (
    DETAIL_HEADER,
    REASON_HEADER,
    SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER,
    SOURCE_TOPIC_HEADER,
    TRUNCATED_HEADER,
    Event,
    Label,
    LabelRequest,
    request_id_for,
    to_json,
)
from activestream.metrics import METRIC_NAMES, Metric
from activestream.service import Service
from activestream.transport.base import TopicPartition
from activestream.transport.factory import admin_from_settings, consumer_from_settings, producer_from_settings
from activestream.transport.kafka import KafkaAdminAdapter, KafkaConsumerAdapter, KafkaProducerAdapter

pytestmark = pytest.mark.broker

SERVICE_DIR = Path(__file__).resolve().parents[2] / "service"
#: Short group timeouts: a join then takes ~3 s on Tansu (6 s is also Apache Kafka's minimum).
GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


# -- helpers --------------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting until {what}")
        time.sleep(interval_s)


def settings_for(broker: EmbeddedBroker, unique_name, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings on this test's own topics, group and checkpoint."""
    options: dict[str, Any] = {
        "bootstrap_servers": broker.bootstrap_servers,
        "group_id": unique_name("group"),
        "events_topic": unique_name("events"),
        "labels_topic": unique_name("labels"),
        "requests_topic": unique_name("requests"),
        "dead_letter_topic": unique_name("dlq"),
        "checkpoint_path": tmp_path / "state.ckpt",
        "poll_timeout_seconds": 0.2,
        "health_check_interval_seconds": 0.5,
        "metrics_host": "127.0.0.1",
        "metrics_port": 0,
        **GROUP,
        **overrides,
    }
    return Settings(**options)


def create_topics(settings: Settings) -> None:
    admin = KafkaAdminAdapter(bootstrap_servers=settings.bootstrap_servers)
    try:
        admin.ensure_topics(
            [
                settings.events_topic,
                settings.labels_topic,
                settings.requests_topic,
                settings.dead_letter_topic,
            ]
        )
    finally:
        admin.close()


def kafka_service(
    settings: Settings, learner: ActiveLearner | None = None, **consumer_options: Any
) -> Service:
    """A ``Service`` on the Kafka adapters of ``settings.transport`` (``build_service`` does the same
    without ``learner``)."""
    return Service(
        settings,
        consumer_from_settings(settings, **consumer_options),
        producer_from_settings(settings),
        admin_from_settings(settings),
        learner=learner,
    )


class Running:
    """A service looping on its own thread; what ``run()`` raised is kept in ``error``."""

    def __init__(self, service: Service):
        self.service = service
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="service", daemon=True)

    def _run(self) -> None:
        try:
            self.service.run()
        except BaseException as error:
            self.error = error

    def start(self) -> Running:
        self.thread.start()
        return self

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        wait_for(
            lambda: self.service.health.ready() or not self.thread.is_alive(),
            timeout_s,
            "the service joined its group",
        )
        assert self.thread.is_alive(), f"the service stopped while starting: {self.error!r}"

    def join(self, timeout_s: float = 30.0) -> None:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "the service loop did not stop"

    def stop(self, timeout_s: float = 30.0) -> None:
        self.service.request_stop()
        self.join(timeout_s)
        assert self.error is None, f"the service failed: {self.error!r}"


@pytest.fixture
def services() -> Iterator[Callable[[Service], Running]]:
    """Starts services on threads; whatever a failing test left running is stopped at teardown."""
    started: list[Running] = []

    def start(service: Service) -> Running:
        running = Running(service).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.service.request_stop()
    for running in started:
        running.thread.join(30)


@pytest.fixture
def producer(broker) -> Iterator[KafkaProducerAdapter]:
    """The test's own producer (events and labels, as upstream systems and annotators would send)."""
    client = KafkaProducerAdapter(bootstrap_servers=broker.bootstrap_servers)
    yield client
    client.close()


def event_value(i: int) -> bytes:
    """Event ``e<i>``; ``i`` is also a feature, so a recording model can tell which events it learned."""
    return to_json(Event(id=f"e{i}", features={"i": float(i), "x": (i * 37 % 101) / 101}))


def truth(event_id: str) -> bool:
    return int(event_id.removeprefix("e")) * 37 % 101 >= 50


def send_events(producer: KafkaProducerAdapter, topic: str, ids: range) -> None:
    for i in ids:
        producer.produce(topic, event_value(i), key=f"e{i}".encode())
    producer.flush(30.0)


def send_labels(producer: KafkaProducerAdapter, topic: str, event_ids: list[str]) -> None:
    """Annotators' answers, naming the event (not the request), keyed by the event id."""
    for event_id in event_ids:
        label = Label(event_id=event_id, label=truth(event_id), annotator="test")
        producer.produce(topic, to_json(label), key=event_id.encode())
    producer.flush(30.0)


def read_topic(
    broker: EmbeddedBroker, topic: str, count: int, timeout_s: float = 20.0, settle_s: float = 0.3
):
    """Every record of partition 0, from the start, once ``count`` arrived (and ``settle_s`` more passed
    with nothing new, so that extra records are seen too)."""
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers, enable_auto_commit=False, client_id="test-reader"
    )
    try:
        tp = KafkaTopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        records: list = []
        deadline = time.monotonic() + timeout_s
        quiet_until = None
        while time.monotonic() < deadline:
            batch = [r for rs in consumer.poll(timeout_ms=100).values() for r in rs]
            records += batch
            if len(records) >= count:
                if batch or quiet_until is None:
                    quiet_until = time.monotonic() + settle_s
                elif time.monotonic() >= quiet_until:
                    break
        return records
    finally:
        consumer.close()


def read_requests(broker: EmbeddedBroker, settings: Settings, count: int) -> list[LabelRequest]:
    records = read_topic(broker, settings.requests_topic, count)
    assert len(records) >= count, f"only {len(records)} of {count} label requests arrived"
    requests = [LabelRequest.model_validate_json(r.value) for r in records]
    for record, request in zip(records, requests, strict=True):
        assert request.request_id == request_id_for(request.event_id)  # deterministic ids
        assert record.key == request.event_id.encode()
    return requests


def committed(broker: EmbeddedBroker, group: str) -> dict[TopicPartition, int]:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, client_id="test-offsets")
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {TopicPartition(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


def value(service: Service, metric: Metric, suffix: str = "", **labels: str) -> float:
    return service.metrics.value(metric, suffix, **labels) or 0.0


def events_seen(service: Service) -> int:
    return int(sum(value(service, Metric.EVENTS, outcome=o) for o in ("asked", "discarded", "invalid")))


class RecordingClassifier(base.Classifier):
    """Gaussian naive Bayes that records the event number of every example it learns.

    The record is pickled with the checkpoint, so after any number of restarts ``learned`` lists what
    the model actually learned, in order: exactly-once shows as "each posted label exactly once".
    """

    def __init__(self) -> None:
        self.inner = naive_bayes.GaussianNB()
        self.learned: list[int] = []

    def learn_one(self, x, y, **kwargs):
        self.learned.append(int(x["i"]))
        self.inner.learn_one(x, y)

    def predict_proba_one(self, x, **kwargs):
        hook = DECIDE_HOOK.get("hook")
        if hook is not None:
            hook(int(x["i"]))
        return self.inner.predict_proba_one(x)


#: A test's hook on every decision (``hook(i)``), outside the pickled model: stops and crashes the loop
#: at an exact event.
DECIDE_HOOK: dict[str, Callable[[int], None] | None] = {}


@pytest.fixture
def decide_hook() -> Iterator[dict[str, Callable[[int], None] | None]]:
    DECIDE_HOOK.clear()
    yield DECIDE_HOOK
    DECIDE_HOOK.clear()


class Crash(BaseException):
    """Kills the loop mid-batch, as a crash would: ``run()`` closes the transport with no checkpoint."""


def recording_learner(budget: float = 0.5) -> ActiveLearner:
    """Asks each event by a seeded draw with probability ``budget`` (Split's random part only), so which
    events are asked depends on the event order only, never on the model: a replay asks the same ones."""
    return ActiveLearner(RecordingClassifier(), policy=Split(budget, v=1.0, seed=11), seed=11)


# -- events → requests → labels → learning ---------------------------------------------------------------


#: Both Kafka clients (``ACTIVESTREAM_TRANSPORT``) on the tests that cover the loop's use of the contract:
#: group join, commits, and seeks from ``on_assign`` after a restart.
TRANSPORTS = ["kafka-python", "confluent"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_events_requests_labels_learned_end_to_end(
    broker, unique_name, tmp_path, services, producer, transport
):
    settings = settings_for(broker, unique_name, tmp_path, budget=0.3, transport=transport)
    n = 300
    create_topics(settings)
    send_events(producer, settings.events_topic, range(n))
    running = services(build_service(settings))  # exactly what ``activestream run`` builds
    service = running.service
    running.wait_ready()
    wait_for(lambda: events_seen(service) == n, 30, f"{n} events were decided")

    asked = int(value(service, Metric.EVENTS, outcome="asked"))
    assert 0 < asked < n
    assert value(service, Metric.LABEL_REQUESTS) == asked
    requests = read_requests(broker, settings, asked)
    assert len(requests) == asked  # one request per asked event, no more
    event_ids = [r.event_id for r in requests]
    assert len(set(event_ids)) == asked
    assert all(r.strategy == f"{settings.measure}/{settings.policy}" for r in requests)  # the defaults
    assert all(r.expires_at > r.created_at for r in requests)

    send_labels(producer, settings.labels_topic, event_ids)
    wait_for(lambda: service.model_version == asked, 30, "every posted label was learned")
    running.stop()

    assert service.model_version == asked
    assert value(service, Metric.LABELS, status="learned") == asked
    assert value(service, Metric.LABEL_DELAY, "_count") == asked
    assert len(service.pending) == 0
    assert sum(value(service, Metric.DEAD_LETTERS, reason=r) for r in ("duplicate", "unknown_request")) == 0
    assert read_topic(broker, settings.dead_letter_topic, 0, settle_s=0.5) == []
    events_tp, labels_tp = TopicPartition(settings.events_topic, 0), TopicPartition(settings.labels_topic, 0)
    # Committed = the next offset to read = last processed + 1, on both inputs; the checkpoint agrees.
    assert committed(broker, settings.group_id) == {events_tp: n, labels_tp: asked}
    checkpoint = load_checkpoint(settings.checkpoint_path)
    assert checkpoint is not None
    assert checkpoint.offsets == {events_tp: n, labels_tp: asked}
    assert checkpoint.model_version == asked


# -- restarts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_restart_and_crash_resume_from_the_checkpoint_exactly_once(
    broker, unique_name, tmp_path, services, producer, decide_hook, transport
):
    """Run 1 stops mid-stream (checkpoint + commit); run 2 resumes from it, commits more batches and
    crashes mid-batch without a checkpoint; run 3 restores run 1's checkpoint and replays what run 2 did
    (events, asks and labels, including labels read before the event they answer). In the end every
    posted label was learned exactly once."""
    settings = settings_for(
        broker,
        unique_name,
        tmp_path,
        max_poll_records=20,
        checkpoint_interval_seconds=3600,
        transport=transport,
    )
    events_tp, labels_tp = TopicPartition(settings.events_topic, 0), TopicPartition(settings.labels_topic, 0)
    create_topics(settings)
    posted: list[str] = []

    def label_new_requests(service_asks: int) -> list[LabelRequest]:
        requests = read_requests(broker, settings, service_asks)
        new = list(dict.fromkeys(r.event_id for r in requests if r.event_id not in posted))
        send_labels(producer, settings.labels_topic, new)
        posted.extend(new)
        return requests

    # Run 1: decide 100 events, label half of the asks, then stop mid-stream at event 200 of 300.
    send_events(producer, settings.events_topic, range(100))
    first = services(kafka_service(settings, recording_learner()))
    first.wait_ready()
    wait_for(lambda: events_seen(first.service) == 100, 30, "run 1 decided 100 events")
    asked_1 = read_requests(broker, settings, int(value(first.service, Metric.LABEL_REQUESTS)))
    half = [r.event_id for r in asked_1[: len(asked_1) // 2]]
    send_labels(producer, settings.labels_topic, half)
    posted += half
    decide_hook["hook"] = lambda i: first.service.request_stop() if i == 200 else None
    send_events(producer, settings.events_topic, range(100, 300))
    first.join()
    assert first.error is None
    decide_hook["hook"] = None
    checkpoint_1 = load_checkpoint(settings.checkpoint_path)
    assert checkpoint_1 is not None
    stopped_at = checkpoint_1.offsets[events_tp]
    assert 200 < stopped_at <= 200 + settings.max_poll_records  # the batch in flight was finished
    assert committed(broker, settings.group_id) == checkpoint_1.offsets
    assert checkpoint_1.model_version == len(checkpoint_1.learner.classifier.learned)
    # While the service is down, the rest of run 1's asks get their labels.
    label_new_requests(int(value(first.service, Metric.LABEL_REQUESTS)))

    # Run 2: a new instance resumes from the checkpoint; it learns, asks, commits... then crashes.
    second = services(kafka_service(settings, recording_learner()))
    second.wait_ready()
    wait_for(
        lambda: (
            events_seen(second.service) == 300 - stopped_at and second.service.model_version == len(posted)
        ),
        30,
        "run 2 decided the rest of the events and learned the labels posted so far",
    )
    asks_so_far = int(
        value(first.service, Metric.LABEL_REQUESTS) + value(second.service, Metric.LABEL_REQUESTS)
    )
    requests_before_crash = label_new_requests(asks_so_far)
    committed_before_crash = {events_tp: 300, labels_tp: len(posted)}
    wait_for(
        lambda: committed(broker, settings.group_id) == committed_before_crash,
        30,
        "run 2 learned and committed every posted label",
    )
    assert second.service.model_version == len(posted)

    def crash(i: int) -> None:
        if i == 300:
            raise Crash("killed while deciding e300")

    decide_hook["hook"] = crash
    send_events(producer, settings.events_topic, range(300, 301))
    second.join()
    assert isinstance(second.error, Crash)
    decide_hook["hook"] = None
    assert load_checkpoint(settings.checkpoint_path).created_at_ms == checkpoint_1.created_at_ms  # no new one
    assert committed(broker, settings.group_id) == committed_before_crash  # the crashed batch: not committed

    # Run 3: restores run 1's checkpoint again and replays everything run 2 did, then goes on.
    third = services(kafka_service(settings, recording_learner()))
    third.wait_ready()
    # The replayed events get run 2's decisions again and are not counted again: e300 is the one new.
    wait_for(
        lambda: events_seen(third.service) == 1 and third.service.model_version == len(posted),
        30,
        "run 3 replayed run 2's events and labels",
    )
    asks_total = asks_so_far + int(value(third.service, Metric.LABEL_REQUESTS))
    requests_after = label_new_requests(asks_total)
    wait_for(lambda: third.service.model_version == len(posted), 30, "run 3 learned every posted label")
    third.stop()

    learned = third.service.learner.classifier.learned
    assert sorted(learned) == sorted(int(e.removeprefix("e")) for e in posted)  # each one exactly once
    assert Counter(learned).most_common(1)[0][1] == 1
    assert third.service.model_version == len(posted) and len(third.service.pending) == 0
    assert read_topic(broker, settings.dead_letter_topic, 0, settle_s=0.5) == []  # no duplicate, no unknown

    # Decided once: run 2's requests were flushed before the crash, so the replay published none again.
    run_2 = [r for r in requests_before_crash if int(r.event_id.removeprefix("e")) >= stopped_at]
    ids = [r.request_id for r in requests_after]
    assert run_2 and len(ids) == len(set(ids))
    final = {events_tp: 301, labels_tp: len(posted)}
    assert committed(broker, settings.group_id) == final
    assert load_checkpoint(settings.checkpoint_path).offsets == final


def test_a_crash_before_the_first_interval_checkpoint_loses_no_label(
    broker, unique_name, tmp_path, services, producer, decide_hook
):
    """A fresh service crashes after committing labels, long before its first interval checkpoint.
    Newly assigned partitions are checkpointed before their first commit, so the restart replays those
    labels instead of starting at the committed offsets with a model that never learned them."""
    settings = settings_for(broker, unique_name, tmp_path, checkpoint_interval_seconds=3600)
    create_topics(settings)
    send_events(producer, settings.events_topic, range(20))
    first = services(kafka_service(settings, recording_learner(budget=1.0)))  # asks every event
    first.wait_ready()
    wait_for(lambda: events_seen(first.service) == 20, 30, "20 events were decided")
    send_labels(producer, settings.labels_topic, [f"e{i}" for i in range(10)])
    labels_tp = TopicPartition(settings.labels_topic, 0)
    wait_for(lambda: committed(broker, settings.group_id).get(labels_tp) == 10, 30, "10 labels committed")

    def crash(i: int) -> None:
        if i == 20:
            raise Crash("killed while deciding e20")

    decide_hook["hook"] = crash
    send_events(producer, settings.events_topic, range(20, 21))
    first.join()
    assert isinstance(first.error, Crash)
    decide_hook["hook"] = None
    state = load_checkpoint(settings.checkpoint_path)  # the first batch's, before its first commit
    assert state is not None and state.offsets[labels_tp] == 0 and state.model_version == 0

    second = services(kafka_service(settings, recording_learner(budget=1.0)))
    second.wait_ready()
    send_labels(producer, settings.labels_topic, [f"e{i}" for i in range(10, 20)])
    service = second.service
    wait_for(
        lambda: service.model_version == 20 or value(service, Metric.LABELS, status="unknown") > 0,
        30,
        "the labels were learned or rejected",
    )
    assert sorted(service.learner.classifier.learned) == list(range(20))
    second.stop()


def _service_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVESTREAM_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SERVICE_DIR), env.get("PYTHONPATH")]))
    for name in settings.model_fields_set:
        env[env_var(name)] = str(getattr(settings, name))
    return env


def _start_cli_service(settings: Settings, log_path: Path) -> subprocess.Popen:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "activestream.cli", "run"],
            env=_service_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _json_logs(log_path: Path) -> list[dict]:
    entries = []
    for line in log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # kafka-python's own lines are not JSON
            entries.append(json.loads(line))
    return entries


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_sigkill_mid_stream_then_restart_learns_every_label_exactly_once(
    broker, unique_name, tmp_path, services, producer, processes
):
    """``activestream run`` is SIGKILLed after committing labels its last checkpoint does not cover; a
    restarted service replays them from the checkpoint into the model: none lost, none learned twice."""
    settings = settings_for(broker, unique_name, tmp_path, budget=0.5, checkpoint_interval_seconds=4)
    events_tp, labels_tp = TopicPartition(settings.events_topic, 0), TopicPartition(settings.labels_topic, 0)
    create_topics(settings)
    send_events(producer, settings.events_topic, range(200))
    log_path = tmp_path / "run.log"
    process = _start_cli_service(settings, log_path)
    processes.append(process)

    def checkpointed(tp: TopicPartition, offset: int) -> bool:
        assert process.poll() is None, f"the service exited: {log_path.read_text()[-3000:]}"
        state = load_checkpoint(settings.checkpoint_path)
        return state is not None and state.offsets.get(tp) == offset

    wait_for(lambda: checkpointed(events_tp, 200), 40, "every event was decided and checkpointed", 0.02)
    requests = read_requests(broker, settings, 1)
    event_ids = list(dict.fromkeys(r.event_id for r in requests))
    assert len(event_ids) >= 4
    first, second = event_ids[: len(event_ids) // 2], event_ids[len(event_ids) // 2 :]
    send_labels(producer, settings.labels_topic, first)
    wait_for(lambda: checkpointed(labels_tp, len(first)), 20, "the first labels were checkpointed", 0.02)
    send_labels(producer, settings.labels_topic, second)  # well before the next checkpoint (4 s later)
    wait_for(
        lambda: committed(broker, settings.group_id).get(labels_tp) == len(event_ids),
        10,
        "the service committed every label",
        0.02,
    )
    process.kill()
    assert process.wait(10) == -signal.SIGKILL
    state = load_checkpoint(settings.checkpoint_path)
    assert state.offsets[labels_tp] == len(first) < len(event_ids)  # committed ahead of the checkpoint
    assert state.model_version == len(first)

    restarted = services(build_service(settings))
    restarted.wait_ready(40)  # the killed member must time out of the group first
    wait_for(lambda: restarted.service.model_version == len(event_ids), 30, "the restart replayed the labels")
    restarted.stop()
    service = restarted.service
    assert service.model_version == len(event_ids)
    # Replayed into the model, each once; counted before the crash, so not again.
    assert value(service, Metric.LABELS, status="learned") == 0
    assert len(service.pending) == 0
    assert read_topic(broker, settings.dead_letter_topic, 0, settle_s=0.5) == []
    assert committed(broker, settings.group_id) == {events_tp: 200, labels_tp: len(event_ids)}


# -- dead letters ---------------------------------------------------------------------------------------


def test_bad_messages_are_dead_lettered_with_their_bytes_and_the_service_keeps_going(
    broker, unique_name, tmp_path, services, producer
):
    settings = settings_for(broker, unique_name, tmp_path, max_message_bytes=2000)
    create_topics(settings)
    always_ask = ActiveLearner(naive_bayes.GaussianNB(), policy=Split(1.0, v=1.0, seed=1), seed=1)
    running = services(kafka_service(settings, always_ask))
    service = running.service
    bad_events = [
        ("undecodable", b"\xff\xfe\x00 not json"),
        ("schema", b'{"id": "e-schema", "features": "not a mapping"}'),
        ("non_finite", b'{"id": "e-nan", "features": {"x": NaN}}'),
        ("empty", b""),
    ]
    good_1 = b'{"id": "e-good-1", "features": {"x": 1.0}}'
    for n, (reason, raw) in enumerate(bad_events):
        producer.produce(
            settings.events_topic, raw, key=f"key-{reason}".encode(), headers=[("trace", b"%d" % n)]
        )
    producer.produce(settings.events_topic, good_1, key=b"e-good-1")
    producer.produce(settings.events_topic, good_1, key=b"key-duplicate", headers=[("trace", b"dup")])
    producer.flush(10.0)
    running.wait_ready()
    wait_for(lambda: events_seen(service) == 6, 30, "the 6 events were handled")
    assert value(service, Metric.EVENTS, outcome="asked") == 1
    assert value(service, Metric.EVENTS, outcome="invalid") == 5

    bad_labels = [
        ("unknown_request", b'{"request_id": "nobody-asked", "label": true}'),
        (None, b'{"event_id": "e-good-1", "label": true}'),  # learned
        ("duplicate", b'{"event_id": "e-good-1", "label": false}'),
        ("unexpected_label", b'{"event_id": "e-good-1", "label": 1.5}'),
        ("schema", b'{"label": 1}'),
    ]
    for n, (_, raw) in enumerate(bad_labels):
        producer.produce(
            settings.labels_topic, raw, key=f"label-{n}".encode(), headers=[("trace", b"l%d" % n)]
        )
    producer.produce(settings.events_topic, b'{"id": "e-good-2", "features": {"x": 2.0}}', key=b"e-good-2")
    producer.flush(10.0)
    wait_for(
        lambda: value(service, Metric.EVENTS, outcome="asked") == 2 and service.model_version == 1,
        30,
        "the good event after the bad ones was asked and the good label learned",
    )
    wait_for(lambda: value(service, Metric.LABELS, status="invalid") == 2, 10, "every label was handled")
    assert running.thread.is_alive() and running.error is None
    assert [r.event_id for r in read_requests(broker, settings, 2)] == ["e-good-1", "e-good-2"]

    dead = read_topic(broker, settings.dead_letter_topic, 9)
    expected = [
        (settings.events_topic, offset, f"key-{reason}".encode(), raw, [("trace", b"%d" % offset)], reason)
        for offset, (reason, raw) in enumerate(bad_events)
    ]
    expected.append((settings.events_topic, 5, b"key-duplicate", good_1, [("trace", b"dup")], "duplicate"))
    expected += [
        (settings.labels_topic, n, f"label-{n}".encode(), raw, [("trace", b"l%d" % n)], reason)
        for n, (reason, raw) in enumerate(bad_labels)
        if reason is not None
    ]
    got = []
    for record in dead:
        headers = list(record.headers)
        extra = dict(headers[1:])
        assert extra[DETAIL_HEADER]  # a readable detail, never empty
        got.append(
            (
                extra[SOURCE_TOPIC_HEADER].decode(),
                int(extra[SOURCE_OFFSET_HEADER]),
                record.key,
                record.value,
                headers[:1],
                extra[REASON_HEADER].decode(),
            )
        )
        assert extra[SOURCE_PARTITION_HEADER] == b"0"
    # Events and labels are two topics: their dead letters interleave in any order, each topic's in order.
    assert sorted(got, key=lambda g: (g[0], g[1])) == sorted(expected, key=lambda e: (e[0], e[1]))
    reasons = Counter(reason for *_, reason in expected)
    for reason, count in reasons.items():
        assert value(service, Metric.DEAD_LETTERS, reason=reason) == count, reason
    running.stop()


def test_an_oversize_event_is_dead_lettered_cut_to_fit_and_the_service_keeps_going(
    broker, unique_name, tmp_path, services, producer
):
    """An oversize record's dead letter cannot carry all of it (it would not fit the producer's limit):
    it carries its first bytes and the original size. Before this was handled, producing it failed and
    the loop died, then died again on the same record after every restart."""
    settings = settings_for(broker, unique_name, tmp_path, max_message_bytes=2000)
    create_topics(settings)
    oversize = b'{"id": "e-big", "features": {"x": 1.0}, "metadata": {"pad": "' + b"a" * 3000 + b'"}}'
    producer.produce(settings.events_topic, oversize, key=b"e-big")
    producer.produce(settings.events_topic, b'{"id": "e-1", "features": {"x": 1.0}}', key=b"e-1")
    producer.flush(10.0)
    running = services(build_service(settings))
    wait_for(
        lambda: events_seen(running.service) == 2 or not running.thread.is_alive(),
        30,
        "both events were handled or the service died",
    )
    assert running.thread.is_alive(), f"the service died: {running.error!r}"
    [dead] = read_topic(broker, settings.dead_letter_topic, 1)
    headers = dict(dead.headers)
    assert headers[REASON_HEADER] == b"oversize" and dead.key == b"e-big"
    # Cut to fit the producer's limit (the whole record could not be produced), and says from what size.
    assert oversize.startswith(dead.value) and 0 < len(dead.value) < settings.max_message_bytes
    assert headers[TRUNCATED_HEADER] == str(len(oversize)).encode()
    assert headers[SOURCE_OFFSET_HEADER] == b"0"
    assert [r.event_id for r in read_requests(broker, settings, 1)] == ["e-1"]
    running.stop()


# -- HTTP: metrics and health on a live broker ---------------------------------------------------------


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _samples(port: int) -> tuple[set[str], dict[tuple[str, frozenset], float]]:
    status, body = _get(port, "/metrics")
    assert status == 200
    families = list(text_string_to_metric_families(body.decode()))
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}
    return {f.name for f in families}, samples


def test_metrics_and_health_endpoints_follow_the_service_and_the_broker(unique_name, tmp_path, services):
    """On a private broker, stopped half-way: /readyz follows the group and the broker, /healthz the loop."""
    with EmbeddedBroker() as private:
        settings = settings_for(private, unique_name, tmp_path, budget=0.5)
        create_topics(settings)
        # Short client timeouts: once the broker is gone, the loop notices and shuts down within seconds.
        service = Service(
            settings,
            KafkaConsumerAdapter.from_settings(settings, request_timeout_ms=2500),
            KafkaProducerAdapter.from_settings(settings, request_timeout_ms=2000, delivery_timeout_ms=3000),
            KafkaAdminAdapter.from_settings(settings, request_timeout_ms=2000),
        )
        server = HttpServer(service.metrics, service.health, "127.0.0.1", 0, liveness_timeout_s=10).start()
        try:
            assert _get(server.port, "/readyz")[0] == 503  # not started: no partitions
            assert _get(server.port, "/healthz")[0] == 200
            running = services(service)
            statuses = []
            wait_for(
                lambda: statuses.append(_get(server.port, "/readyz")[0]) or statuses[-1] == 200,
                30,
                "/readyz turned 200",
            )
            assert statuses[0] == 503 and set(statuses[:-1]) <= {503}
            assert json.loads(_get(server.port, "/readyz")[1])["partitions_assigned"] is True

            producer = KafkaProducerAdapter(bootstrap_servers=private.bootstrap_servers)
            send_events(producer, settings.events_topic, range(50))
            wait_for(lambda: events_seen(service) == 50, 30, "50 events were decided")
            asked = int(value(service, Metric.EVENTS, outcome="asked"))
            requests = read_requests(private, settings, asked)
            send_labels(producer, settings.labels_topic, [r.event_id for r in requests])
            producer.close()
            wait_for(lambda: service.model_version == asked, 30, "the labels were learned")
            events_lag = (
                Metric.CONSUMER_LAG.value,
                frozenset({"topic": settings.events_topic, "partition": "0"}.items()),
            )
            wait_for(lambda: _samples(server.port)[1].get(events_lag) == 0, 10, "the lag was measured")

            names, samples = _samples(server.port)
            assert {m.removesuffix("_total") for m in METRIC_NAMES} <= names  # every documented family

            def sample(name: str, **labels: str) -> float:
                return samples[(name, frozenset(labels.items()))]

            assert sample("activestream_events_total", outcome="asked") == asked
            assert sample("activestream_events_total", outcome="discarded") == 50 - asked
            assert sample("activestream_events_total", outcome="invalid") == 0
            assert sample("activestream_label_requests_total") == asked
            assert sample("activestream_labels_total", status="learned") == asked
            assert sample("activestream_label_delay_seconds_count") == asked
            assert sample("activestream_processing_duration_seconds_count") == 50
            assert sample("activestream_batch_duration_seconds_count") >= 1
            assert sample("activestream_pending_labels") == 0
            assert sample("activestream_dead_letters_total", reason="schema") == 0
            assert sample("activestream_budget_target_ratio") == 0.5
            assert sample("activestream_up") == 1
            build = {"version": __version__, "model": settings.model, "measure": settings.measure}
            assert sample("activestream_build_info", policy=settings.policy, **build) == 1
            assert sum(v for (n, _), v in samples.items() if n == "activestream_asked_labels_total") == asked
            assert _get(server.port, "/healthz")[0] == 200
            assert _get(server.port, "/nope")[0] == 404

            private.stop(timeout_s=0.2)  # a crash of the broker, not a drain
            wait_for(lambda: _get(server.port, "/readyz")[0] == 503, 20, "/readyz turned 503", 0.1)
            body = json.loads(_get(server.port, "/readyz")[1])
            assert body["broker_reachable"] is False and body["partitions_assigned"] is True
            # The loop goes on (it only waits for the broker): alive, never restarted for an outage.
            outage_end = time.monotonic() + 2.0
            while time.monotonic() < outage_end:
                assert _get(server.port, "/healthz")[0] == 200
                time.sleep(0.2)
            assert running.thread.is_alive()
            running.service.request_stop()
            running.join(30)  # the final commit fails (logged); the checkpoint is written all the same
            assert running.error is None
            assert load_checkpoint(settings.checkpoint_path).model_version == asked
            assert _samples(server.port)[1][("activestream_up", frozenset())] == 0
        finally:
            server.stop()


# -- signals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_checkpoints_commits_and_exits_0(
    broker, unique_name, tmp_path, producer, processes, signum
):
    settings = settings_for(
        broker, unique_name, tmp_path, max_poll_records=50, checkpoint_interval_seconds=3600, budget=0.2
    )
    events_tp = TopicPartition(settings.events_topic, 0)
    create_topics(settings)
    n = 3000
    send_events(producer, settings.events_topic, range(n))
    log_path = tmp_path / "run.log"
    process = _start_cli_service(settings, log_path)
    processes.append(process)

    def started_committing() -> bool:
        assert process.poll() is None, f"the service exited: {log_path.read_text()[-3000:]}"
        return committed(broker, settings.group_id).get(events_tp, 0) > 0

    wait_for(started_committing, 40, "the service committed its first batch", 0.02)
    process.send_signal(signum)
    signalled = time.monotonic()
    assert process.wait(20) == 0, log_path.read_text()[-3000:]
    took = time.monotonic() - signalled
    assert took < 10, f"took {took:.1f} s to stop"

    state = load_checkpoint(settings.checkpoint_path)
    assert state is not None
    offsets = committed(broker, settings.group_id)
    assert offsets == state.offsets  # the drain committed exactly what the checkpoint covers
    decided = offsets[events_tp]
    assert 0 < decided <= n
    # Everything asked before the stop was flushed: one request on the topic per pending entry.
    requests = read_requests(broker, settings, len(state.pending))
    assert len(requests) == len(state.pending) > 0
    assert all(int(r.event_id.removeprefix("e")) < decided for r in requests)
    # The interval is an hour: besides the first batch's checkpoint, only the drain writes one — unless
    # the signal came right after that first batch, when there is nothing new to save (the checkpoint
    # already covers the committed offsets, as asserted above).
    messages = [entry["message"] for entry in _json_logs(log_path)]
    after = messages[messages.index("stop requested") :]
    if decided > settings.max_poll_records:
        assert "checkpoint saved" in after
    if "checkpoint saved" in after:
        assert after.index("checkpoint saved") < after.index("service stopped")
    stop = next(entry for entry in _json_logs(log_path) if entry["message"] == "stop requested")
    assert stop["signal"] == signum.name


# -- CLI helpers ------------------------------------------------------------------------------------------


def test_cli_replay_csv_and_post_label(broker, unique_name, tmp_path, monkeypatch, capsys):
    from activestream import cli

    settings = settings_for(broker, unique_name, tmp_path)
    create_topics(settings)
    for name in ("bootstrap_servers", "events_topic", "labels_topic", "requests_topic", "dead_letter_topic"):
        monkeypatch.setenv(env_var(name), str(getattr(settings, name)))
    csv_path = tmp_path / "events.csv"
    csv_path.write_text("id,price,region,flag,class\nrow-1,3.5,north,true,up\nrow-2,-1,south,false,down\n")

    assert cli.main(["replay", "--csv", str(csv_path), "--id-column", "id"]) == 0
    assert "produced 2 events" in capsys.readouterr().out
    assert cli.main(["replay", "--csv", str(csv_path), "--events", "1"]) == 0  # ids by row number
    records = read_topic(broker, settings.events_topic, 3)
    events = [Event.model_validate_json(r.value) for r in records]
    assert [(r.key, e.id) for r, e in zip(records, events, strict=True)] == [
        (b"row-1", "row-1"),
        (b"row-2", "row-2"),
        (b"ev-0000000", "ev-0000000"),
    ]
    assert events[0].features == {"price": 3.5, "region": "north", "flag": True}  # no label, no id
    assert events[1].features == {"price": -1, "region": "south", "flag": False}

    assert cli.main(["post-label", "--event-id", "row-1", "--label", "up", "--annotator", "ann"]) == 0
    assert cli.main(["post-label", "--event-id", "row-2", "--label", "7"]) == 0
    assert cli.main(["post-label", "--event-id", "row-2", "--label", "0.5"]) == 2  # floats are refused
    records = read_topic(broker, settings.labels_topic, 2)
    labels = [Label.model_validate_json(r.value) for r in records]
    assert [(r.key, lb.event_id, lb.label, lb.annotator) for r, lb in zip(records, labels, strict=True)] == [
        (b"row-1", "row-1", "up", "ann"),
        (b"row-2", "row-2", 7, None),
    ]
