"""The readers (``transport.base.Reader``: one partition from an offset, in no consumer group) against the
embedded broker, on both transports through ``test_kafka_transport``'s ``kit`` fixture; and
``reader_from_settings`` choosing the reader of the configured transport.

No fixed sleeps: a reader is polled until what is expected arrived or a deadline passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import test_kafka_transport
from test_kafka_transport import Kit, make_topic, produce

from activestream.config import Settings
from activestream.demo.broker import EmbeddedBroker
from activestream.transport.base import Message, Reader, TopicPartition
from activestream.transport.errors import TransportError
from activestream.transport.factory import reader_from_settings
from activestream.transport.kafka import KafkaReaderAdapter

#: Both transports, parametrised as in ``test_kafka_transport`` (the fixture, shared).
kit = test_kafka_transport.kit

#: How long a reader may take to deliver what the broker has (it takes milliseconds; CI machines are slow).
DEADLINE_S = 10.0


def reader_class(kit: Kit) -> type[Any]:
    if kit.name == "kafka-python":
        return KafkaReaderAdapter
    from activestream.transport.confluent import ConfluentReaderAdapter

    return ConfluentReaderAdapter


@pytest.fixture
def new_reader(kit: Kit, broker: EmbeddedBroker) -> Iterator[Callable[..., Reader]]:
    """``new_reader(**options)``: a reader of ``kit``'s transport on the broker, closed after the test."""
    readers: list[Reader] = []

    def make(**options: Any) -> Reader:
        reader = reader_class(kit)(bootstrap_servers=broker.bootstrap_servers, **options)
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        reader.close()


def read_until(reader: Reader, count: int, max_records: int = 100) -> list[Message]:
    """Poll until ``count`` messages arrived (or more) or ``DEADLINE_S`` passed; every batch obeys
    ``max_records``."""
    got: list[Message] = []
    deadline = time.monotonic() + DEADLINE_S
    while len(got) < count and time.monotonic() < deadline:
        batch = reader.poll(0.2, max_records)
        assert len(batch) <= max_records
        got += batch
    return got


@pytest.mark.broker
def test_reads_from_an_offset_then_again_from_the_start(kit, broker, new_reader, unique_name):
    topic = unique_name("reader")
    make_topic(kit, broker, topic)
    produce(kit, broker, topic, [b"value-%d" % i for i in range(5)], key=b"k", headers=[("trace", b"t")])
    tp = TopicPartition(topic, 0)
    reader = new_reader()

    reader.assign(tp, 2)
    got = read_until(reader, 3, max_records=2)
    assert [(m.offset, m.value) for m in got] == [(2, b"value-2"), (3, b"value-3"), (4, b"value-4")]
    assert all(m.topic_partition == tp and m.key == b"k" and m.headers == (("trace", b"t"),) for m in got)
    assert all(isinstance(m.timestamp_ms, int) for m in got)

    reader.assign(tp, 0)  # moves an active reader back: nothing prefetched before is returned
    assert [(m.offset, m.value) for m in read_until(reader, 5)] == [(i, b"value-%d" % i) for i in range(5)]
    assert reader.poll(0.2, 100) == []  # the end: nothing repeated

    # In no group: nothing was committed under the group id librdkafka needed (kafka-python: none at all).
    if kit.name == "kafka-python":
        assert reader._consumer.config["group_id"] is None
    else:
        from activestream.transport.confluent import READER_GROUP_ID

        group = kit.Consumer(bootstrap_servers=broker.bootstrap_servers, group_id=READER_GROUP_ID)
        try:
            assert group.committed(tp) is None
        finally:
            group.close()


@pytest.mark.broker
def test_a_record_produced_after_the_end_was_reached_is_read_by_a_later_poll(
    kit, broker, new_reader, unique_name
):
    topic = unique_name("tail")
    make_topic(kit, broker, topic)
    produce(kit, broker, topic, [b"a", b"b"])
    reader = new_reader()
    reader.assign(TopicPartition(topic, 0), 0)
    assert [m.value for m in read_until(reader, 2)] == [b"a", b"b"]
    assert reader.poll(0.2, 100) == []
    produce(kit, broker, topic, [b"c"])
    assert [(m.offset, m.value) for m in read_until(reader, 1)] == [(2, b"c")]


@pytest.mark.broker
def test_the_end_of_a_partition_counts_a_record_flushed_alone(kit, broker, new_reader, unique_name):
    """``end_offset`` without reading: 0 for an empty partition; after a batch of three records and a
    record flushed alone, at least up to that record (Tansu 0.6 answers ``ListOffsets`` with the start of
    the last batch + 1, exact for a batch of one: what a snapshot's manifest relies on)."""
    topic = unique_name("end")
    make_topic(kit, broker, topic)
    tp = TopicPartition(topic, 0)
    reader = new_reader()
    assert reader.end_offset(tp) == 0
    produce(kit, broker, topic, [b"a", b"b", b"c"])
    produce(kit, broker, topic, [b"marker"])
    assert reader.end_offset(tp) == 4
    reader.assign(tp, 0)
    assert [m.value for m in read_until(reader, 4)][-1] == b"marker"
    assert reader.end_offset(tp) == 4  # (also once read: the fetch's high watermark agrees)


@pytest.mark.broker
def test_a_topic_that_does_not_exist_reads_as_empty_and_is_not_created(kit, broker, new_reader, unique_name):
    topic = unique_name("missing")
    reader = new_reader()
    reader.assign(TopicPartition(topic, 0), 0)
    deadline = time.monotonic() + 1.0  # long enough for the client to have asked the broker about it
    while time.monotonic() < deadline:
        assert reader.poll(0.2, 100) == []
    admin = kit.Admin(bootstrap_servers=broker.bootstrap_servers)
    try:
        assert admin.missing_topics([topic]) == [topic]  # reading did not create it
        admin.ensure_topics([topic])
    finally:
        admin.close()
    produce(kit, broker, topic, [b"first"])
    assert [(m.offset, m.value) for m in read_until(reader, 1)] == [(0, b"first")]  # read once it exists


@pytest.mark.broker
def test_misuse_is_refused_and_close_is_final(kit, new_reader, unique_name):
    reader = new_reader()
    with pytest.raises(RuntimeError):
        reader.poll(0.1, 10)  # before assign
    with pytest.raises(ValueError):
        reader.assign(TopicPartition(unique_name("t"), 0), -1)
    reader.assign(TopicPartition(unique_name("t"), 0), 0)
    with pytest.raises(ValueError):
        reader.poll(0.1, 0)
    reader.close()
    reader.close()  # idempotent
    with pytest.raises(TransportError):
        reader.poll(0.1, 10)


@pytest.mark.broker
def test_reader_from_settings_on_the_broker(kit, broker, unique_name):
    settings = Settings(transport=kit.name, bootstrap_servers=broker.bootstrap_servers)
    topic = unique_name("settings")
    make_topic(kit, broker, topic)
    produce(kit, broker, topic, [b"x"])
    reader = reader_from_settings(settings)
    try:
        assert type(reader) is reader_class(kit)
        reader.assign(TopicPartition(topic, 0), 0)
        assert [m.value for m in read_until(reader, 1)] == [b"x"]
    finally:
        reader.close()


@pytest.mark.parametrize("transport", ["kafka-python", "confluent"])
def test_reader_from_settings_builds_the_transports_reader_with_no_group_settings(transport, monkeypatch):
    """No broker: the adapter's constructor is stood in for and records what it was given."""
    if transport == "confluent":
        pytest.importorskip("confluent_kafka", reason="pip install 'activestream[fast]'")
    expected = reader_class(Kit(transport, None, None, None))
    built: list[dict[str, Any]] = []
    monkeypatch.setattr(expected, "__init__", lambda self, **kwargs: built.append(kwargs))
    settings = Settings(
        transport=transport,
        bootstrap_servers="kafka-1:9092",
        group_id="scorer",
        group_instance_id="pod-0",
        fetch_max_wait_ms=80,
    )
    reader = reader_from_settings(settings, client_id="replay")
    assert type(reader) is expected
    (kwargs,) = built
    assert kwargs == {
        "bootstrap_servers": "kafka-1:9092",
        "fetch_max_wait_ms": 80,
        "client_id": "replay",
        "security": settings.kafka_security_kwargs(),
    }  # neither group_id nor group_instance_id: a reader acts for no group
