"""The transport adapters against a real broker (the embedded Tansu): every test runs on both transports,
kafka-python (``transport.kafka``) and confluent-kafka (``transport.confluent``), through the ``kit``
fixture; the contract is the same, so are the tests.

Group joins take about half the session timeout on Tansu, so every consumer here costs ~3 s; the tests
share consumers where they can. Nothing here is Tansu-specific: the same tests hold on Apache Kafka.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
from kafka import KafkaAdminClient

from activestream.demo.broker import EmbeddedBroker
from activestream.transport.base import Message, TopicPartition
from activestream.transport.errors import BrokerUnavailable, DeliveryError, TransportError
from activestream.transport.kafka import KafkaAdminAdapter, KafkaConsumerAdapter, KafkaProducerAdapter

pytestmark = pytest.mark.broker

#: Short group timeouts (6 s is also Apache Kafka's minimum session timeout).
GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


class Kit(NamedTuple):
    """One transport's adapter classes."""

    name: str
    Consumer: Any
    Producer: Any
    Admin: Any


def _confluent_kit() -> Kit:
    from activestream.transport.confluent import (
        ConfluentAdminAdapter,
        ConfluentConsumerAdapter,
        ConfluentProducerAdapter,
    )

    return Kit("confluent", ConfluentConsumerAdapter, ConfluentProducerAdapter, ConfluentAdminAdapter)


@pytest.fixture(params=["kafka-python", "confluent"])
def kit(request: pytest.FixtureRequest) -> Kit:
    if request.param == "kafka-python":
        return Kit("kafka-python", KafkaConsumerAdapter, KafkaProducerAdapter, KafkaAdminAdapter)
    pytest.importorskip("confluent_kafka", reason="pip install 'activestream[fast]'")
    return _confluent_kit()


def make_consumer(kit: Kit, broker: EmbeddedBroker, group: str, **options) -> Any:
    return kit.Consumer(bootstrap_servers=broker.bootstrap_servers, group_id=group, **{**GROUP, **options})


def make_topic(kit: Kit, broker: EmbeddedBroker, topic: str, partitions: int = 1) -> None:
    admin = kit.Admin(bootstrap_servers=broker.bootstrap_servers)
    try:
        admin.ensure_topics([topic], partitions=partitions)
    finally:
        admin.close()


def produce(kit: Kit, broker: EmbeddedBroker, topic: str, values: list[bytes], **record) -> None:
    producer = kit.Producer(bootstrap_servers=broker.bootstrap_servers)
    try:
        for value in values:
            producer.produce(topic, value, **record)
        producer.flush(10.0)
    finally:
        producer.close()


def poll_until(consumer: Any, count: int, timeout_s: float = 20.0, **kw) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got += consumer.poll(0.5, kw.get("max_records", 100))
    return got


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def poll_while(consumer: Any, waiting: Callable[[], bool], timeout_s: float) -> bool:
    """Poll back to back (a join that completes between two polls is thrown away by kafka-python 3.0.12
    and sent again) until ``waiting()`` turns false; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while waiting():
        if time.monotonic() > deadline:
            return False
        consumer.poll(0.2, 1)
    return True


def test_roundtrip_with_headers_then_explicit_commit_and_resume(kit, broker, unique_name):
    topic, group = unique_name("roundtrip"), unique_name("g")
    make_topic(kit, broker, topic)
    producer = kit.Producer(bootstrap_servers=broker.bootstrap_servers)
    if kit.name == "kafka-python":
        assert producer._producer.config["enable_idempotence"] is True  # accepted, not silently disabled
    for i in range(5):
        producer.produce(
            topic, b"value-%d" % i, key=b"key-%d" % i, headers=[("trace", b"t%d" % i), ("n", b"")]
        )
    producer.flush(10.0)
    producer.close()

    tp = TopicPartition(topic, 0)
    assigned: list[set[TopicPartition]] = []
    first = make_consumer(kit, broker, group)
    first.subscribe([topic], on_assign=assigned.append)
    got = poll_until(first, 5)
    assert assigned == [{tp}]
    assert [(m.offset, m.value, m.key) for m in got] == [
        (i, b"value-%d" % i, b"key-%d" % i) for i in range(5)
    ]
    assert got[2].headers == (("trace", b"t2"), ("n", b""))
    assert all(isinstance(m.timestamp_ms, int) and m.topic_partition == tp for m in got)
    assert first.committed(tp) is None
    first.commit({tp: 3})  # processed offsets 0..2 only, although 0..4 were polled
    assert first.committed(tp) == 3
    first.close()

    second = make_consumer(kit, broker, group)
    second.subscribe([topic])
    assert [m.offset for m in poll_until(second, 2)] == [3, 4]
    assert second.poll(0.5, 100) == []
    second.close()


def test_seek_lag_and_a_failing_callback(kit, broker, unique_name):
    topic = unique_name("seek")
    make_topic(kit, broker, topic)
    produce(kit, broker, topic, [b"%d" % i for i in range(10)])  # one record batch
    tp = TopicPartition(topic, 0)
    consumer = make_consumer(kit, broker, unique_name("g"))
    failed: list[set[TopicPartition]] = []

    def on_assign(tps: set[TopicPartition]) -> None:
        if not failed:
            failed.append(tps)
            raise LookupError("restore failed")

    consumer.subscribe([topic], on_assign=on_assign)
    assert consumer.lag() == {}  # nothing assigned yet
    with pytest.raises(LookupError, match="restore failed"):  # the callback's own exception, unwrapped
        poll_while(consumer, lambda: True, 20)
    assert failed == [{tp}] and consumer.assignment() == {tp}  # the member carries on
    first = poll_until(consumer, 1, max_records=4)
    assert [m.offset for m in first] == [0, 1, 2, 3]
    assert consumer.lag() == {tp: 6}
    consumer.seek(tp, 1)
    assert [m.offset for m in consumer.poll(5.0, 2)] == [1, 2]
    consumer.seek(tp, 8)
    assert [m.offset for m in poll_until(consumer, 2)] == [8, 9]
    assert consumer.lag() == {tp: 0}
    with pytest.raises(ValueError):
        consumer.seek(TopicPartition(topic, 7), 0)
    with pytest.raises(TransportError):  # not ours: would overwrite the owner's progress
        consumer.commit({TopicPartition(topic, 7): 1})
    consumer.close()


def test_lag_covers_partitions_nothing_was_consumed_from_and_a_removed_member_joins_again(
    kit, broker, unique_name
):
    """Lag counts from where fetching starts before any record is consumed (the reader of shared pending
    requests waits for lag 0 on every partition); ``remove_members`` takes a member out by its id."""
    topic, group = unique_name("lag"), unique_name("g")
    make_topic(kit, broker, topic, partitions=2)
    produce(kit, broker, topic, [b"a", b"b", b"c"], key=b"k")  # one partition gets all three, the other none
    consumer = make_consumer(kit, broker, group)
    consumer.subscribe([topic])
    assert poll_while(consumer, lambda: not consumer.assignment(), 30)
    lag = consumer.lag()
    assert set(lag) == consumer.assignment() == {TopicPartition(topic, 0), TopicPartition(topic, 1)}
    assert min(lag.values()) == 0  # the empty partition (the other: at most 3, by Tansu's end offsets)
    assert poll_while(consumer, lambda: any(consumer.lag().values()), 30)
    member = consumer.member_id()
    assert member
    admin = kit.Admin(bootstrap_servers=broker.bootstrap_servers)
    try:
        assert admin.remove_members(group, [member, "nobody"]) == {
            member: None,
            "nobody": "UnknownMemberIdError",
        }
    finally:
        admin.close()
    # The removed member hears it at its next heartbeat or poll and joins again under a new id.
    assert poll_while(
        consumer, lambda: consumer.member_id() in (None, member) or not consumer.assignment(), 60
    )
    consumer.close()


class Member(threading.Thread):
    """A consumer-group member polling on its own thread, as the service does."""

    def __init__(
        self, kit: Kit, name: str, broker: EmbeddedBroker, group: str, topic: str, log: list
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.consumer = make_consumer(kit, broker, group, client_id=name)
        self.topic, self.log, self.error = topic, log, None
        self.stop = threading.Event()

    def on_assign(self, tps: set[TopicPartition]) -> None:
        committed = {tp: self.consumer.committed(tp) for tp in tps}  # blocking calls work in callbacks
        self.log.append((self.name, "assign", frozenset(tps), committed))

    def on_revoke(self, tps: set[TopicPartition]) -> None:
        try:
            self.consumer.commit({tp: 0 for tp in tps})
            outcome = "committed"
        except TransportError as exc:
            outcome = type(exc.__cause__).__name__
        self.log.append((self.name, "revoke", frozenset(tps), outcome))

    def run(self) -> None:
        try:
            self.consumer.subscribe([self.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
            while not self.stop.is_set():
                self.consumer.poll(0.2, 10)
            self.consumer.close()
        except BaseException as exc:
            self.error = exc

    def holds(self) -> set[TopicPartition]:
        return self.consumer.assignment()  # read from the test thread: a snapshot, good enough to wait on

    def finish(self) -> None:
        self.stop.set()
        self.join(30)
        assert not self.is_alive() and self.error is None, self.error


def test_rebalance_callbacks_on_join_second_member_and_close(kit, broker, unique_name):
    topic, group = unique_name("rebalance"), unique_name("g")
    make_topic(kit, broker, topic, partitions=2)
    both = {TopicPartition(topic, 0), TopicPartition(topic, 1)}
    log: list = []
    a = Member(kit, "a", broker, group, topic, log)
    a.start()
    assert wait_for(lambda: a.holds() == both, 20), log
    b = Member(kit, "b", broker, group, topic, log)
    b.start()
    assert wait_for(lambda: len(a.holds()) == 1 and len(b.holds()) == 1, 30), log
    a_final = a.holds()
    a.finish()  # leaves first; b is still stable when a revokes
    b.finish()

    a_events = [entry for entry in log if entry[0] == "a"]
    assert a_events[0] == ("a", "assign", frozenset(both), {tp: None for tp in both})
    assert a_events[1] == ("a", "revoke", frozenset(both), "committed")  # the second member joined
    assert a_events[2][:3] == ("a", "assign", frozenset(a_final))
    assert a_events[2][3] == {tp: 0 for tp in a_final}  # sees what it committed while revoking
    assert a_events[3] == ("a", "revoke", frozenset(a_final), "committed")  # on close
    b_events = [entry[:3] for entry in log if entry[0] == "b"]
    assert ("b", "assign", frozenset(both - a_final)) in b_events
    assert any(kind == "revoke" for _, kind, _ in b_events)  # on rebalance or close


def test_partitions_lost_after_missing_the_poll_deadline(kit, broker, unique_name):
    topic = unique_name("lost")
    make_topic(kit, broker, topic)
    events: list = []
    # librdkafka refuses a poll interval below the session timeout: shorten both there.
    timeouts = {"session_timeout_ms": 2000} if kit.name == "confluent" else {}
    consumer = make_consumer(kit, broker, unique_name("g"), max_poll_interval_ms=2000, **timeouts)
    consumer.subscribe(
        [topic],
        on_assign=lambda tps: events.append(("assign", tps)),
        on_revoke=lambda tps: events.append(("revoke", tps)),
        on_lost=lambda tps: events.append(("lost", tps)),
    )
    assert poll_while(consumer, lambda: not consumer.assignment(), 20)
    time.sleep(3)  # no poll for longer than max_poll_interval_ms: the client leaves the group
    assert poll_while(consumer, lambda: len(events) < 2, 15), events
    assert events[:2] == [("assign", {TopicPartition(topic, 0)}), ("lost", {TopicPartition(topic, 0)})]
    consumer.close()


def test_admin_ensure_topics_is_idempotent(kit, broker, unique_name):
    a, b = unique_name("admin-a"), unique_name("admin-b")
    admin = kit.Admin(bootstrap_servers=broker.bootstrap_servers)
    assert admin.is_reachable(5.0) is True
    admin.ensure_topics([a], partitions=3)
    admin.ensure_topics([a, b, a], partitions=2)  # a exists: left as it is
    admin.ensure_topics([a, b])
    admin.close()
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        described = {t["name"]: len(t["partitions"]) for t in client.describe_topics([a, b])}
    finally:
        client.close()
    assert described == {a: 3, b: 2}


def test_from_settings(kit, broker, unique_name):
    from activestream.config import Settings

    settings = Settings(bootstrap_servers=broker.bootstrap_servers, group_id=unique_name("g"), **GROUP)
    producer = kit.Producer.from_settings(settings)
    if kit.name == "kafka-python":
        assert producer._producer.config["max_request_size"] == settings.max_message_bytes
    producer.close()
    admin = kit.Admin.from_settings(settings)
    assert admin.is_reachable(5.0)
    admin.close()
    consumer = kit.Consumer.from_settings(settings)
    if kit.name == "kafka-python":
        assert consumer._consumer.config["group_id"] == settings.group_id
    with pytest.raises(RuntimeError):
        consumer.poll(0.1, 1)  # before subscribe
    consumer.close()


def test_unreachable_bootstrap_raises_broker_unavailable(kit):
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        kit.Producer(bootstrap_servers="127.0.0.1:1", bootstrap_timeout_ms=500)
    assert time.monotonic() - started < 5
    admin = kit.Admin(bootstrap_servers="127.0.0.1:1", bootstrap_timeout_ms=500)
    assert admin.is_reachable(0.2) is False  # never waits longer than asked
    admin.close()


def test_flush_raises_and_broker_unreachable_once_the_broker_is_gone(kit, unique_name):
    topic = unique_name("gone")
    with EmbeddedBroker() as private:
        admin = kit.Admin(bootstrap_servers=private.bootstrap_servers, request_timeout_ms=2000)
        admin.ensure_topics([topic])
        producer = kit.Producer(
            bootstrap_servers=private.bootstrap_servers,
            delivery_timeout_ms=1500,
            request_timeout_ms=1000,
            max_block_ms=1000,
        )
        producer.produce(topic, b"before")
        producer.flush(10.0)
        assert admin.is_reachable(2.0) is True
        private.stop(timeout_s=0.2)  # Tansu drains clients for 5 s on SIGTERM; this is a crash

        started = time.monotonic()
        assert admin.is_reachable(1.0) is False
        assert time.monotonic() - started < 1.5
        producer.produce(topic, b"after")  # metadata is cached: accepted, then never acknowledged
        with pytest.raises(DeliveryError) as raised:
            producer.flush(10.0)
        assert raised.value.failures and raised.value.failures[0][0] == topic
        started = time.monotonic()
        producer.close()
        admin.close()
        assert time.monotonic() - started < 5


def events_before_first_label(
    consumer: Any,
    send_labels: Callable[[], None],
    labels_topic: str,
    start_after: int = 10_000,
    timeout_s: float = 120.0,
    handle: Callable[[Message], object] = lambda m: None,
) -> int:
    """How many events ``consumer`` (subscribed to an events and a labels topic) reads after
    ``send_labels()`` produced labels and before the first label: label latency during a backlog, counted.

    Polls as the service does (``poll(1.0, 500)``) and calls ``handle`` with every message, up to the end
    of the batch the first label came in; ``send_labels`` runs once ``start_after`` events were read. A
    transport that serves the labels only after the whole backlog scores what was left of it.
    ``AssertionError`` if no label arrives within ``timeout_s``.
    """
    read, sent_at, waited = 0, None, None
    deadline = time.monotonic() + timeout_s
    while waited is None:
        assert time.monotonic() < deadline, f"no label within {timeout_s} s ({read} events read)"
        for m in consumer.poll(1.0, 500):
            handle(m)
            if m.topic != labels_topic:
                read += 1
            elif waited is None:
                assert sent_at is not None, "a label arrived before any was sent"
                waited = read - sent_at
        if sent_at is None and read >= start_after:
            send_labels()
            sent_at = read
    return waited


#: Events in the backlog of the fairness test, and the most read after the labels before the first label.
#: Measured (200k backlog, 25 us of work per event, 2 shared vCPUs): kafka-python 335-41,696; confluent
#: 6,500-12,000 with a fair share of 2,000 messages, 17,500-26,000 with 10,000 (the share since
#: 2026-12-04), and 190,000 (the whole backlog) without FairShare.
BACKLOG, LABEL_BOUND = 200_000, 100_000


def test_labels_are_served_within_a_bound_during_an_events_backlog(kit, broker, unique_name):
    events, labels = unique_name("events"), unique_name("labels")
    make_topic(kit, broker, events)
    make_topic(kit, broker, labels)
    produce(kit, broker, events, [b"%08d" % i + b"-" * 99 for i in range(BACKLOG)])  # ~110 B, as events
    consumer = make_consumer(kit, broker, unique_name("g"))
    consumer.subscribe([events, labels])
    producer = kit.Producer(bootstrap_servers=broker.bootstrap_servers)
    seen: dict[str, list[int]] = {events: [], labels: []}

    def work(m: Message) -> None:  # the service's work on an event (~25 us), so the prefetch fills up
        seen[m.topic].append(m.offset)
        if m.topic == events and len(seen[labels]) == 0:
            until = time.perf_counter() + 25e-6
            while time.perf_counter() < until:
                pass

    def send_labels() -> None:
        for i in range(50):
            producer.produce(labels, b'{"event_id": "e%d", "label": 1}' % i)
        producer.flush(10.0)

    waited = events_before_first_label(consumer, send_labels, labels, handle=work)
    assert waited <= LABEL_BOUND, f"{waited} events before the first label ({kit.name})"
    while len(seen[events]) < BACKLOG or len(seen[labels]) < 50:
        batch = consumer.poll(5.0, 500)
        assert batch, f"stalled at {len(seen[events])} events, {len(seen[labels])} labels"
        for m in batch:
            work(m)
    # Pausing and resuming lost nothing and repeated nothing.
    assert seen[events] == list(range(BACKLOG)) and seen[labels] == list(range(50))
    assert consumer.poll(0.5, 500) == []
    consumer.close()
    producer.close()
