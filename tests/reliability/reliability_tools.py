"""Tools of the reliability suite (and of ``benchmarks/soak.py``): a service subprocess, a paced event
stream, a simulated annotator, topic readers and the exactly-once verifier.

Everything talks to the broker over loopback only. The service under test is ``activestream run`` in a
subprocess, configured by environment variables exactly as in production, so that SIGKILL is a real
crash: no ``finally``, no flush, no checkpoint.

The verifier works from what survives the process: the checkpoint (``load_checkpoint``: the learner's
``model_version`` counts learned labels, the pending store remembers in a bounded LRU the request ids it
closed, learned ones with the status ``duplicate`` that a second label would get) and the topics
(label requests, dead letters, the audit trail of decisions).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition

from activestream.checkpoint import CheckpointState, load_checkpoint
from activestream.config import env_var
from activestream.join import JoinStatus
from activestream.messages import REASON_HEADER, Event, Label, LabelRequest, request_id_for, to_json
from activestream.transport.base import TopicPartition

SERVICE_DIR = Path(__file__).resolve().parents[2] / "service"
#: Short group timeouts: a join then takes ~3 s on Tansu (6 s is also Apache Kafka's minimum).
GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting until {what}")
        time.sleep(interval_s)


def wait_while_progressing(
    condition: Callable[[], object],
    progress: Callable[[], object],
    what: str,
    stall_s: float = 30.0,
    cap_s: float = 600.0,
    interval_s: float = 1.0,
) -> None:
    """Wait until ``condition``, for as long as ``progress()`` keeps changing: fail when it has not changed
    for ``stall_s`` (stuck), or after ``cap_s`` in all.

    For work whose length scales with the machine (a backlog to catch up with): a fixed timeout is a speed
    assertion, and it failed on a loaded 2-core runner while the service was still working correctly.
    """
    started = last_change = time.monotonic()
    seen = progress()
    while not condition():
        now = time.monotonic()
        if now - last_change > stall_s:
            raise AssertionError(f"no progress for {stall_s:g} s waiting until {what} (at {seen!r})")
        if now - started > cap_s:
            raise AssertionError(f"timed out after {cap_s:g} s waiting until {what} (at {seen!r})")
        time.sleep(interval_s)
        current = progress()
        if current != seen:
            seen, last_change = current, time.monotonic()


def service_options(bootstrap: str, name: Callable[[str], str], checkpoint: Path, **overrides: Any) -> dict:
    """Settings of one service under test: its own topics, group and checkpoint; loopback HTTP."""
    return {
        "bootstrap_servers": bootstrap,
        "group_id": name("group"),
        "events_topic": name("events"),
        "labels_topic": name("labels"),
        "requests_topic": name("requests"),
        "dead_letter_topic": name("dlq"),
        "decisions_topic": name("decisions"),
        "checkpoint_path": checkpoint,
        "checkpoint_interval_seconds": 1,
        "poll_timeout_seconds": 0.2,
        "health_check_interval_seconds": 0.5,
        "metrics_host": "127.0.0.1",
        "metrics_port": 0,
        "label_ttl_seconds": 3600,
        **GROUP,
        **overrides,
    }


def service_env(options: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVESTREAM_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SERVICE_DIR), env.get("PYTHONPATH")]))
    for key, value in options.items():
        env[env_var(key)] = str(value)
    return env


def json_lines(path: Path) -> list[dict]:
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # kafka-python's own lines are not JSON
            entry = json.loads(line)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


class ServiceProcess:
    """``activestream run`` in a subprocess; its output (JSON logs) appended to ``log_path``."""

    def __init__(self, options: dict[str, Any], log_path: Path):
        self.options = options
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self._log_offset = 0

    def start(self) -> ServiceProcess:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "activestream.cli", "run"],
                env=service_env(self.options),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> list[dict]:
        """This run's JSON log entries."""
        if not self.log_path.exists():
            return []
        with self.log_path.open("rb") as f:
            f.seek(self._log_offset)
            text = f.read().decode(errors="replace")
        entries = []
        for line in text.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def logged(self, message: str) -> bool:
        return any(entry.get("message") == message for entry in self.logs())

    def http_port(self, timeout_s: float = 30.0) -> int:
        found: list[int] = []

        def started() -> bool:
            self.check_alive()
            found.extend(e["port"] for e in self.logs() if e.get("message") == "http server started")
            return bool(found)

        wait_for(started, timeout_s, "the HTTP server started")
        return found[0]

    def wait_assigned(self, timeout_s: float = 40.0) -> None:
        def assigned() -> bool:
            self.check_alive()
            return any(e.get("message") == "partitions assigned" and e.get("partitions") for e in self.logs())

        wait_for(assigned, timeout_s, "the service joined its group", 0.05)

    def check_alive(self) -> None:
        if not self.alive:
            code = self.process.returncode if self.process is not None else None
            raise AssertionError(f"the service exited by itself (code {code}):\n{self.tail()}")

    def kill(self) -> None:
        assert self.process is not None
        self.check_alive()
        self.process.kill()
        assert self.process.wait(10) == -signal.SIGKILL

    def terminate(self, timeout_s: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def wait(self, timeout_s: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout_s)

    def ensure_stopped(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)


# -- the stream and the annotator -----------------------------------------------------------------------


def features_for(i: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed * 1_000_003 + i)
    return {"a": rng.gauss(0, 1), "b": rng.gauss(0, 1), "c": rng.gauss(0, 1)}


def truth_for(features: dict[str, float]) -> bool:
    return features["a"] + 0.5 * features["b"] > 0


def event_id(i: int) -> str:
    return f"e{i:07d}"


class EventStreamer(threading.Thread):
    """Produces events ``e0000000``, ``e0000001``... at ``rate_per_s`` until stopped (or ``limit``)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        rate_per_s: float,
        seed: int = 0,
        limit: int | None = None,
        features: Callable[[int, int], dict[str, float]] = features_for,
        first: int = 0,
    ):
        super().__init__(name="event-streamer", daemon=True)
        self.topic, self.rate, self.seed, self.limit = topic, rate_per_s, seed, limit
        self.features = features
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        self.first = first  # the first event number: ids continue a stream already on the topic
        self.sent = first  # the next event number; at the end, the number of events on the topic
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        started = time.monotonic()
        try:
            while not self.stop_event.is_set() and (self.limit is None or self.sent < self.limit):
                i = self.sent
                event = Event(id=event_id(i), features=self.features(i, self.seed))
                self.producer.send(self.topic, to_json(event), key=event.id.encode())
                self.sent += 1
                ahead = (self.sent - self.first) / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    self.stop_event.wait(ahead)
            self.producer.flush(60)
        except BaseException as error:  # reported by stop()
            self.error = error

    def stop(self, drain: bool = False) -> int:
        """Stop now (``drain``: once ``limit`` events were sent); return the number sent."""
        if drain:
            self.join(300)
        self.stop_event.set()
        self.join(90)
        self.producer.close(10)
        if self.error is not None:
            raise AssertionError(f"the event streamer failed: {self.error!r}")
        return self.sent


@dataclass
class AnnotatorStats:
    requests_seen: int = 0  # records on the requests topic, duplicates included
    distinct: dict[str, str] = field(default_factory=dict)  # request id -> event id
    posted: dict[str, str] = field(default_factory=dict)  # request id -> event id, one label each
    bad_ids: list[str] = field(default_factory=list)  # requests whose id is not derived from the event


class Annotator(threading.Thread):
    """Reads every label request (no group: assigned every partition of the requests topic from the
    start) and posts one label per distinct request id after an exponential delay. Labels name the
    request and the event and are keyed by the event id, as the service expects: with kafka-python's
    default partitioner, the one ``EventStreamer`` uses, a label lands on its event's partition number
    when the labels topic has as many partitions as the events topic. ``keyed=False`` sends them with no
    key: the producer spreads them over the partitions (an annotation tool that does not use murmur2)."""

    def __init__(
        self,
        bootstrap: str,
        requests_topic: str,
        labels_topic: str,
        seed: int = 0,
        mean_delay_s: float = 0.3,
        answer: Callable[[str], bool] | None = None,
        keyed: bool = True,
    ):
        super().__init__(name="annotator", daemon=True)
        self.keyed = keyed
        self.bootstrap, self.requests_topic, self.labels_topic = bootstrap, requests_topic, labels_topic
        self.seed, self.mean_delay_s = seed, mean_delay_s
        self.answer = answer or (lambda eid: truth_for(features_for(int(eid[1:]), seed)))
        self.stats = AnnotatorStats()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._queue: list[tuple[float, int, str, str]] = []
        self._lock = threading.Lock()
        self.paused = threading.Event()  # while set, labels due are held back
        #: Whether the last poll reached the end of the requests topic (its fetch high watermark).
        self.caught_up = False

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._queue)

    def run(self) -> None:
        rng = random.Random(self.seed)
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks="all")
        tps = _assign_all(consumer, self.requests_topic)
        seq = 0
        try:
            while not self.stop_event.is_set():
                polled = consumer.poll(timeout_ms=100)
                self.caught_up = not polled and _at_end(consumer, tps)
                for records in polled.values():
                    for record in records:
                        request = LabelRequest.model_validate_json(record.value)
                        with self._lock:
                            self.stats.requests_seen += 1
                            if request.request_id != request_id_for(request.event_id):
                                self.stats.bad_ids.append(request.request_id)
                            if request.request_id in self.stats.distinct:
                                continue
                            self.stats.distinct[request.request_id] = request.event_id
                            seq += 1
                            due = time.monotonic() + rng.expovariate(1 / self.mean_delay_s)
                            heapq.heappush(self._queue, (due, seq, request.request_id, request.event_id))
                if self.paused.is_set():
                    continue
                now = time.monotonic()
                sent = False
                while True:
                    with self._lock:
                        if not self._queue or self._queue[0][0] > now:
                            break
                        _, _, request_id, eid = heapq.heappop(self._queue)
                    label = Label(
                        request_id=request_id, event_id=eid, label=self.answer(eid), annotator="sim"
                    )
                    key = eid.encode() if self.keyed else None
                    producer.send(self.labels_topic, to_json(label), key=key)
                    with self._lock:
                        self.stats.posted[request_id] = eid
                    sent = True
                if sent:
                    producer.flush(60)
        except BaseException as error:
            self.error = error
        finally:
            with contextlib.suppress(Exception):
                producer.flush(60)
            producer.close(10)
            consumer.close()

    def stop(self) -> AnnotatorStats:
        self.stop_event.set()
        self.join(90)
        if self.error is not None:
            raise AssertionError(f"the annotator failed: {self.error!r}")
        return self.stats


# -- reading topics -------------------------------------------------------------------------------------


def partitions_of(consumer: KafkaConsumer, topic: str, timeout_s: float = 10.0) -> list[int]:
    """The partition numbers of ``topic`` (it must exist)."""
    found: list[int] = []

    def known() -> bool:
        found[:] = sorted(consumer.partitions_for_topic(topic) or ())
        return bool(found)

    wait_for(known, timeout_s, f"the metadata of {topic} named its partitions", 0.1)
    return found


def _assign_all(consumer: KafkaConsumer, topic: str) -> list[KafkaTopicPartition]:
    tps = [KafkaTopicPartition(topic, p) for p in partitions_of(consumer, topic)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    return tps


def _at_end(consumer: KafkaConsumer, tps: Iterable[KafkaTopicPartition]) -> bool:
    """Every partition read up to the high watermark of its last fetch response."""
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is None or consumer.position(tp) < highwater:
            return False
    return True


def read_partitions(bootstrap: str, topic: str, timeout_s: float = 30.0) -> tuple[list, dict[int, int]]:
    """Every record of every partition of ``topic`` up to its end now, and each partition's end offset.

    The end is the high watermark of the fetch responses: Tansu answers ``ListOffsets(latest)`` with
    the base offset of the last record batch plus one, short of the end when that batch holds several.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = _assign_all(consumer, topic)
        records: list = []
        deadline = time.monotonic() + timeout_s
        while True:
            batch = [r for rs in consumer.poll(timeout_ms=200).values() for r in rs]
            records += batch
            if not batch and _at_end(consumer, tps):
                return records, {tp.partition: consumer.position(tp) for tp in tps}
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"read {len(records)} records of {topic} in {timeout_s:g} s, not the end"
                )
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list:
    """Every record of ``topic`` (every partition, each in order), up to its end now."""
    return read_partitions(bootstrap, topic, timeout_s)[0]


def committed_total(offsets: dict[TopicPartition, int], topic: str) -> int:
    """The committed offsets of ``topic``'s partitions, summed: the records read, when no offset is past
    its partition's end."""
    return sum(offset for tp, offset in offsets.items() if tp.topic == topic)


def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="reliability-offsets")
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {TopicPartition(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


TOPIC_SETTINGS = (
    "events_topic",
    "labels_topic",
    "requests_topic",
    "dead_letter_topic",
    "decisions_topic",
    "training_topic",
    "snapshot_topic",
)


def service_topics(options: dict[str, Any]) -> list[str]:
    """Every topic of a service, to create before it starts.

    Provisioned up front, as in production, and on purpose: kafka-python 3.0.12 forgets a topic it only
    knows from its bootstrap metadata when it fetches metadata for another one, and its records to it
    then hang (``test_kafka_client.py``); a service that creates some of its topics itself can hit that.
    """
    return [options[name] for name in TOPIC_SETTINGS if options.get(name)]


def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int = 1) -> None:
    from activestream.transport.kafka import KafkaAdminAdapter

    admin = KafkaAdminAdapter(bootstrap_servers=bootstrap)
    try:
        admin.ensure_topics(list(topics), partitions)
    finally:
        admin.close()


def ensure_service_topics(bootstrap: str, options: dict[str, Any], partitions: int = 1) -> None:
    """A service's topics: the events and labels topics with ``partitions`` partitions each (labels keyed
    by event id land on their event's partition number: the service's label join needs as many label
    partitions as event partitions), the others with one."""
    topics = service_topics(options)
    joined = [options["events_topic"], options["labels_topic"]]
    ensure_topics(bootstrap, joined, partitions)
    ensure_topics(bootstrap, [t for t in topics if t not in joined])


# -- the verifier ---------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What a run did, from the final checkpoint and the topics; ``problems`` empty means exactly-once."""

    events: int
    labels_posted: int
    learned: int  # distinct request ids the final state learned
    model_version: int  # labels learned, counted by the model's version
    lost: list[str]  # posted labels never learned
    learned_twice: int  # model_version - distinct learned
    unasked_learned: list[str]  # learned without a posted label (impossible unless ids are wrong)
    requests_on_topic: int
    distinct_requests: int
    republished: int  # requests_on_topic - distinct_requests: records of a request already on the topic
    asks_forgotten: list[str]  # events asked on the topic that the final state does not know
    bad_request_ids: int
    dead_letters: dict[str, int]
    decisions: int
    redecided: int  # events with more than one decision record (replays)
    flipped: int  # ... whose records disagree on ask
    spend: float  # distinct requests / events
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        for key in ("lost", "unasked_learned", "asks_forgotten"):
            d[key] = len(d[key])
        return d


def learned_count(state: CheckpointState) -> int:
    """How many requests the checkpointed state learned (closed with the status a second label gets)."""
    closed = state.pending.closed
    assert len(closed) < state.pending.closed_max, "the closed-request memory overflowed: raise pending_max"
    return closed.count(JoinStatus.DUPLICATE)


def learned_among(state: CheckpointState, request_ids: Iterable[str]) -> set[str]:
    """Which of ``request_ids`` the checkpointed state learned (it keeps digests of ids, not the ids)."""
    closed = state.pending.closed
    return {rid for rid in request_ids if closed.status_of_request(rid) is JoinStatus.DUPLICATE}


def verify(bootstrap: str, options: dict[str, Any], posted: dict[str, str], events: int) -> Verdict:
    """Compare the final checkpoint with the labels posted and the topics."""
    state = load_checkpoint(options["checkpoint_path"])
    assert state is not None, "no checkpoint"
    requests = [
        LabelRequest.model_validate_json(r.value) for r in read_all(bootstrap, options["requests_topic"])
    ]
    event_ends = read_partitions(bootstrap, options["events_topic"])[1]
    label_ends = read_partitions(bootstrap, options["labels_topic"])[1]
    asked_events = {r.event_id for r in requests}
    dead = Counter(
        dict(r.headers).get(REASON_HEADER, b"?").decode()
        for r in read_all(bootstrap, options["dead_letter_topic"])
    )
    decisions: dict[str, list[bool]] = defaultdict(list)
    for record in read_all(bootstrap, options["decisions_topic"]):
        entry = json.loads(record.value)
        decisions[entry["event_id"]].append(entry["ask"])
    learned = learned_count(state)
    posted_learned = learned_among(state, posted)
    # Every learned id was asked, so it is on the requests topic; what is learned and was not posted:
    unasked = sorted(learned_among(state, {r.request_id for r in requests} - set(posted)))
    verdict = Verdict(
        events=events,
        labels_posted=len(posted),
        learned=learned,
        model_version=state.model_version,
        lost=sorted(set(posted) - posted_learned),
        learned_twice=state.model_version - learned,
        unasked_learned=unasked,
        requests_on_topic=len(requests),
        distinct_requests=len({r.request_id for r in requests}),
        republished=len(requests) - len({r.request_id for r in requests}),
        asks_forgotten=sorted(e for e in asked_events if not state.pending.knows_event(e)),
        bad_request_ids=sum(r.request_id != request_id_for(r.event_id) for r in requests),
        dead_letters=dict(dead),
        decisions=len(decisions),
        redecided=sum(len(v) > 1 for v in decisions.values()),
        flipped=sum(len(set(v)) > 1 for v in decisions.values()),
        spend=len(asked_events) / events if events else 0.0,
    )
    offsets = state.offsets
    p = verdict.problems
    if sum(event_ends.values()) != events:
        p.append(f"{sum(event_ends.values())} records on the events topic, {events} produced")
    if sum(label_ends.values()) != len(posted):
        p.append(f"{sum(label_ends.values())} records on the labels topic, {len(posted)} labels posted")
    for topic, ends in ((options["events_topic"], event_ends), (options["labels_topic"], label_ends)):
        for partition, end in sorted(ends.items()):
            covered = offsets.get(TopicPartition(topic, partition), 0)
            if covered != end:
                p.append(f"the checkpoint covers {topic}[{partition}] up to {covered}, its end is {end}")
    if verdict.lost:
        p.append(f"{len(verdict.lost)} posted labels were never learned (e.g. {verdict.lost[:3]})")
    if verdict.learned_twice:
        p.append(f"{verdict.learned_twice} labels learned more than once")
    if verdict.unasked_learned:
        p.append(f"{len(verdict.unasked_learned)} learned request ids were never posted")
    if learned != len(posted_learned) + len(unasked):
        p.append(f"{learned - len(posted_learned) - len(unasked)} learned request ids are on no topic")
    if verdict.asks_forgotten:
        p.append(f"{len(verdict.asks_forgotten)} asked events unknown to the final state")
    if verdict.bad_request_ids:
        p.append(f"{verdict.bad_request_ids} requests with an id not derived from their event")
    if verdict.distinct_requests != len(asked_events):
        p.append("some event was asked under two request ids")
    if dead:
        p.append(f"dead letters: {dict(dead)}")
    if set(decisions) != {f"e{i:07d}" for i in range(events)}:
        p.append(f"{len(decisions)} events in the audit trail, {events} produced")
    if verdict.flipped:
        p.append(f"{verdict.flipped} events decided differently by a replay")
    return verdict


# -- outages ----------------------------------------------------------------------------------------------


def sample(port: int, series: str) -> float:
    """One series of a service's ``/metrics``, e.g. ``activestream_labels_total{status="learned"}``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def labels_on_log(bootstrap: str, topic: str) -> list[str]:
    """The request ids of the labels on a training log (its examples and label records, not its requests)."""
    ids = []
    for record in read_all(bootstrap, topic):
        value = json.loads(record.value)
        if value.get("kind") != "ask":
            ids.append(value.get("request_id") or request_id_for(value["event_id"]))
    return ids


def learned_from_log(port: int) -> float:
    """The examples a service learned from the training log."""
    return sample(port, 'activestream_training_examples_total{outcome="learned"}')


def kill_and_restart(service: ServiceProcess, port: int, timeout_s: float = 90) -> float:
    """SIGKILL the service and start it again at once; return the seconds until ``/readyz`` said 200."""
    service.kill()
    killed = time.monotonic()
    service.start()
    wait_for(lambda: service.check_alive() or ready(port), timeout_s, "the restarted service was ready", 0.1)
    return time.monotonic() - killed


def ready(port: int) -> bool:
    """Whether the service on ``port`` answers ``/readyz`` with 200 (``False`` while it does not listen)."""
    try:
        return get(port, "/readyz")[0] == 200
    except OSError:
        return False


def get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Prober(threading.Thread):
    """Samples ``/healthz`` and ``/readyz`` every 0.2 s: ``(monotonic time, healthz, readyz)``."""

    def __init__(self, port: int):
        super().__init__(name="prober", daemon=True)
        self.port = port
        self.samples: list[tuple[float, int, int]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.2):
            try:
                self.samples.append(
                    (time.monotonic(), get(self.port, "/healthz")[0], get(self.port, "/readyz")[0])
                )
            except OSError:
                self.samples.append((time.monotonic(), 0, 0))

    def between(self, start: float, end: float) -> list[tuple[float, int, int]]:
        return [s for s in self.samples if start <= s[0] <= end]


def run_outage(
    proxy: Any,
    tmp_path: Path,
    name: Callable[[str], str],
    outage_s: float,
    rate_per_s: float = 100,
    seed: int = 7,
    mode: str = "reset",
    backlog: int = 0,
    cut_after_s: float = 5.0,
    **overrides: Any,
) -> dict:
    """Stream, cut everything (``proxy.drop_all(outage_s, mode)``), restore, settle; what was observed.

    Every client goes through ``proxy`` (the broker advertises it). ``backlog`` events are produced
    before the service starts, so that it is busy — producing and flushing — when the outage comes
    ``cut_after_s`` after it started streaming; ``overrides`` go to the service's settings. Returns the
    verdict, the probes of ``/healthz`` and ``/readyz`` during the outage and after, how long readiness
    took to turn off and to come back, the labels posted during the outage, and the number of service
    starts (1: no restart).
    """
    bootstrap = proxy.address
    options = service_options(bootstrap, name, tmp_path / "state.ckpt", **{"budget": 0.2, **overrides})
    ensure_topics(bootstrap, service_topics(options))
    if backlog:
        preload = EventStreamer(bootstrap, options["events_topic"], 1e9, seed=seed, limit=backlog)
        preload.start()
        preload.stop(drain=True)
    service = ServiceProcess(options, tmp_path / "service.log").start()
    streamer = EventStreamer(
        bootstrap, options["events_topic"], rate_per_s=rate_per_s, seed=seed, first=backlog
    )
    annotator = Annotator(bootstrap, options["requests_topic"], options["labels_topic"], seed=seed)
    prober: Prober | None = None
    try:
        port = service.http_port()
        prober = Prober(port)
        prober.start()
        service.wait_assigned()
        wait_for(lambda: get(port, "/readyz")[0] == 200, 30, "/readyz turned 200")
        streamer.start()
        annotator.start()
        # Labels due in the last second before the cut are held back and posted once it has begun, so
        # some are always posted during the outage. Left to chance, the annotator could be waiting on the
        # flush of a label sent just before the cut (or have nothing due): 0 posted during it (1 CI run).
        time.sleep(max(0.0, cut_after_s - 1.0))
        annotator.paused.set()
        time.sleep(min(1.0, cut_after_s))
        labels_at_cut = len(annotator.stats.posted)
        cut = time.monotonic()
        proxy.drop_all(outage_s, mode)
        annotator.paused.clear()
        wait_for(lambda: not proxy.dropped, outage_s + 5, "the outage ended", 0.1)
        back = time.monotonic()
        labels_during = len(annotator.stats.posted) - labels_at_cut
        service.check_alive()
        wait_for(lambda: get(port, "/readyz")[0] == 200, 60, "/readyz turned 200 again", 0.2)
        ready_again = time.monotonic()
        time.sleep(3)
        events = streamer.stop()
        events_tp = TopicPartition(options["events_topic"], 0)
        labels_tp = TopicPartition(options["labels_topic"], 0)

        def settled() -> bool:
            service.check_alive()
            offsets = committed(bootstrap, options["group_id"])
            return (
                offsets.get(events_tp) == events
                and annotator.caught_up
                and annotator.waiting == 0
                and offsets.get(labels_tp, 0) == len(annotator.stats.posted)
            )

        def progress() -> tuple[int, int]:
            offsets = committed(bootstrap, options["group_id"])
            return offsets.get(events_tp, 0) + offsets.get(labels_tp, 0), len(annotator.stats.posted)

        # The backlog takes what this machine takes (80,000 events and ~16,000 labels: ~25 s of CPU idle,
        # more under load): wait while the service commits, fail when it stops making progress.
        wait_while_progressing(settled, progress, "the service caught up")
        caught_up = time.monotonic()
        wait_for(settled, 10, "the service stayed caught up", 1.0)
        time.sleep(max(0.0, caught_up + 2.0 - time.monotonic()))  # at least 2 s of probes once caught up
        stayed = time.monotonic()
        stats = annotator.stop()
        prober.stop_event.set()
        prober.join(5)
        assert service.terminate() == 0, service.tail()
        verdict = verify(bootstrap, options, stats.posted, events)
        logs = service.logs()
        return {
            "verdict": verdict,
            "during": prober.between(cut + 0.5, back - 0.2),
            "after": prober.between(ready_again, ready_again + 3),
            # Once it caught up with everything produced during and after the outage.
            "caught_up": prober.between(caught_up, stayed),
            "not_ready_after_s": next(
                (t - cut for t, _, ready in prober.between(cut, back) if ready != 200), None
            ),
            "ready_again_after_restore_s": ready_again - back,
            "labels_during_outage": labels_during,  # posted by the annotator, delivered after
            "restarts": sum(1 for e in logs if e.get("message") == "service started"),
            # The service's own warnings (kafka-python's connection errors are counted, not listed).
            "warnings": sorted(
                {
                    e["message"]
                    for e in logs
                    if e.get("level") in ("WARNING", "ERROR")
                    and e.get("logger", "").startswith("activestream")
                }
            ),
            # Flushes that outlasted flush_timeout_seconds during the outage and were waited out.
            "flush_waits": sum(
                1
                for e in logs
                if e.get("message") == "broker unavailable" and "not acknowledged" in str(e.get("error"))
            ),
            "kafka_python_warnings": sum(
                1
                for e in logs
                if e.get("level") in ("WARNING", "ERROR") and e.get("logger", "").startswith("kafka")
            ),
        }
    finally:
        if prober is not None:
            prober.stop_event.set()
        streamer.stop_event.set()
        annotator.stop_event.set()
        service.ensure_stopped()
