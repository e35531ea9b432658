"""MemoryBroker follows the transport contract the service loop is written against."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activestream.transport.base import Admin, Consumer, Producer, TopicPartition
from activestream.transport.errors import BrokerUnavailable, DeliveryError, TransportError
from activestream.transport.memory import MemoryBroker, murmur2


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


def produce(broker: MemoryBroker, topic: str, count: int, key: bytes | None = None) -> None:
    producer = broker.producer()
    for i in range(count):
        producer.produce(topic, b"m%d" % i, key=key)
    producer.flush(1.0)


class Recorder:
    """Rebalance callbacks that log what happened, in order."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.events: list[tuple[str, str, list[TopicPartition]]] = []

    def callbacks(self, with_lost: bool = True) -> dict:
        def record(kind):
            return lambda tps: self.events.append((self.name, kind, sorted(tps)))

        callbacks = {"on_assign": record("assign"), "on_revoke": record("revoke")}
        if with_lost:
            callbacks["on_lost"] = record("lost")
        return callbacks


def test_clients_implement_the_contract():
    broker = MemoryBroker()
    assert isinstance(broker.consumer("g"), Consumer)
    assert isinstance(broker.producer(), Producer)
    assert isinstance(broker.admin(), Admin)


# -- producing ---------------------------------------------------------------------------------------------


def test_records_become_visible_at_flush():
    broker = MemoryBroker()
    producer = broker.producer()
    producer.produce("out", b"a", headers=[("h", b"1")])
    assert broker.messages("out") == []
    producer.flush(1.0)
    [message] = broker.messages("out")
    assert (message.topic, message.partition, message.offset, message.value) == ("out", 0, 0, b"a")
    assert message.headers == (("h", b"1"),)
    assert message.key is None and message.timestamp_ms is not None


def test_close_delivers_what_is_buffered_and_then_refuses():
    broker = MemoryBroker()
    producer = broker.producer()
    producer.produce("out", b"a")
    producer.close()
    assert [m.value for m in broker.messages("out")] == [b"a"]
    with pytest.raises(TransportError):
        producer.produce("out", b"b")


def test_keyed_records_stick_to_a_partition_and_keyless_ones_rotate():
    broker = MemoryBroker()
    broker.admin().ensure_topics(["t"], partitions=3)
    producer = broker.producer()
    for i in range(6):
        producer.produce("t", b"k%d" % i, key=b"same-key")
        producer.produce("t", b"n%d" % i)
    producer.flush(1.0)
    keyed = {m.partition for m in broker.messages("t") if m.key is not None}
    keyless = [m.partition for m in broker.messages("t") if m.key is None]
    assert len(keyed) == 1
    assert keyless == [0, 1, 2, 0, 1, 2]
    offsets = {p: [m.offset for m in broker.messages("t") if m.partition == p] for p in range(3)}
    assert all(o == list(range(len(o))) for o in offsets.values())  # dense, in order, per partition


@given(st.binary(max_size=64))
def test_murmur2_matches_kafka_default_partitioner(key):
    from kafka.partitioner.default import murmur2 as kafka_murmur2

    assert murmur2(key) == kafka_murmur2(key) & 0xFFFFFFFF


def test_unknown_topic_is_created_with_the_default_partition_count():
    broker = MemoryBroker(default_partitions=4)
    produce(broker, "fresh", 1)
    assert broker.partitions("fresh") == 4


def test_fail_flush_drops_the_records_and_raises():
    broker = MemoryBroker()
    producer = broker.producer(fail_flush=True)
    producer.produce("out", b"a")
    producer.produce("out", b"b")
    with pytest.raises(DeliveryError) as raised:
        producer.flush(1.0)
    assert [topic for topic, _ in raised.value.failures] == ["out", "out"]
    assert broker.messages("out") == []
    producer.fail_flush = False
    producer.produce("out", b"c")
    producer.flush(1.0)
    assert [m.value for m in broker.messages("out")] == [b"c"]


def test_oversized_record_is_refused_at_produce():
    broker = MemoryBroker(max_message_bytes=10)
    with pytest.raises(DeliveryError):
        broker.producer().produce("out", b"x" * 11)


def test_runs_are_deterministic():
    def run() -> list:
        broker = MemoryBroker()
        broker.admin().ensure_topics(["t"], partitions=2)
        producer = broker.producer()
        for i in range(10):
            producer.produce("t", b"%d" % i, key=b"%d" % (i % 3))
        producer.flush(1.0)
        consumer = broker.consumer("g")
        consumer.subscribe(["t"])
        return broker.messages("t") + consumer.poll(0, 4) + consumer.poll(0, 4)

    assert run() == run()


# -- consuming ---------------------------------------------------------------------------------------------


def test_first_poll_assigns_every_partition_then_reads_from_the_beginning():
    broker = MemoryBroker()
    broker.admin().ensure_topics(["t"], partitions=2)
    produce(broker, "t", 4)  # keyless: two per partition
    consumer = broker.consumer("g")
    recorder = Recorder()
    consumer.subscribe(["t"], **recorder.callbacks())
    assert recorder.events == []  # the join happens in poll
    batch = consumer.poll(1.0, 10)
    assert recorder.events == [("", "assign", [tp("t", 0), tp("t", 1)])]
    assert sorted((m.partition, m.offset) for m in batch) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert consumer.assignment() == {tp("t", 0), tp("t", 1)}
    assert consumer.poll(1.0, 10) == []


def test_max_records_is_respected_and_no_partition_starves():
    broker = MemoryBroker()
    broker.admin().ensure_topics(["t"], partitions=2)
    producer = broker.producer()
    for i in range(20):
        producer.produce("t", b"%d" % i, key=None)
    producer.flush(1.0)
    consumer = broker.consumer("g")
    consumer.subscribe(["t"])
    first, second = consumer.poll(0, 3), consumer.poll(0, 3)
    assert len(first) == len(second) == 3
    assert {m.partition for m in first} != {m.partition for m in second}


def test_commit_exact_offsets_and_a_new_member_resumes_there():
    broker = MemoryBroker()
    produce(broker, "t", 5)
    first = broker.consumer("g")
    first.subscribe(["t"])
    assert [m.offset for m in first.poll(1.0, 10)] == [0, 1, 2, 3, 4]
    assert first.committed(tp("t", 0)) is None
    first.commit({tp("t", 0): 3})  # processed 0..2
    assert first.committed(tp("t", 0)) == 3
    first.close()
    second = broker.consumer("g")
    second.subscribe(["t"])
    assert [m.offset for m in second.poll(1.0, 10)] == [3, 4]
    assert broker.committed("g") == {tp("t", 0): 3}
    other_group = broker.consumer("other")
    other_group.subscribe(["t"])
    assert [m.offset for m in other_group.poll(1.0, 10)] == [0, 1, 2, 3, 4]


def test_commit_rejects_bad_offsets_and_partitions_not_owned():
    broker = MemoryBroker()
    produce(broker, "t", 1)
    consumer = broker.consumer("g")
    consumer.subscribe(["t"])
    consumer.poll(0, 1)
    with pytest.raises(ValueError):
        consumer.commit({tp("t", 0): -1})
    with pytest.raises(TransportError):
        consumer.commit({tp("elsewhere", 0): 1})


def test_seek_rewinds_and_skips():
    broker = MemoryBroker()
    produce(broker, "t", 5)
    consumer = broker.consumer("g")
    consumer.subscribe(["t"])
    consumer.poll(0, 10)
    consumer.seek(tp("t", 0), 1)
    assert [m.offset for m in consumer.poll(0, 2)] == [1, 2]
    consumer.seek(tp("t", 0), 4)
    assert [m.offset for m in consumer.poll(0, 10)] == [4]
    with pytest.raises(ValueError):
        consumer.seek(tp("t", 1), 0)
    with pytest.raises(ValueError):
        consumer.seek(tp("t", 0), -1)


def test_seek_inside_on_assign_sets_the_start():
    broker = MemoryBroker()
    produce(broker, "t", 5)
    consumer = broker.consumer("g")
    consumer.subscribe(["t"], on_assign=lambda tps: [consumer.seek(p, 3) for p in tps])
    assert [m.offset for m in consumer.poll(0, 10)] == [3, 4]


def test_lag_counts_what_is_left_to_read():
    broker = MemoryBroker()
    produce(broker, "t", 5)
    consumer = broker.consumer("g")
    consumer.subscribe(["t"])
    assert consumer.lag() == {}  # nothing assigned before the first poll
    consumer.poll(0, 2)
    assert consumer.lag() == {tp("t", 0): 3}
    produce(broker, "t", 2)
    assert consumer.lag() == {tp("t", 0): 5}


def test_close_revokes_so_the_owner_can_commit():
    broker = MemoryBroker()
    produce(broker, "t", 3)
    consumer = broker.consumer("g")
    consumer.subscribe(["t"], on_revoke=lambda tps: consumer.commit({p: 2 for p in tps}))
    consumer.poll(0, 10)
    consumer.close()
    assert broker.committed("g") == {tp("t", 0): 2}
    consumer.close()  # idempotent
    with pytest.raises(TransportError):
        consumer.poll(0, 1)


def test_poll_before_subscribe_is_an_error():
    with pytest.raises(RuntimeError):
        MemoryBroker().consumer("g").poll(0, 1)


def test_a_topic_created_after_subscribing_is_assigned_at_the_next_poll():
    broker = MemoryBroker()
    consumer = broker.consumer("g")
    recorder = Recorder()
    consumer.subscribe(["later"], **recorder.callbacks())
    assert consumer.poll(0, 1) == []
    produce(broker, "later", 1)
    assert [m.value for m in consumer.poll(0, 1)] == [b"m0"]
    assert recorder.events == [("", "assign", []), ("", "assign", [tp("later", 0)])]


# -- groups and rebalances ---------------------------------------------------------------------------------


def test_second_member_rebalances_eagerly_revoking_before_any_assign():
    broker = MemoryBroker()
    broker.admin().ensure_topics(["t"], partitions=2)
    events: list = []
    a, b = broker.consumer("g"), broker.consumer("g")
    ra, rb = Recorder("a"), Recorder("b")
    ra.events = rb.events = events
    a.subscribe(["t"], **ra.callbacks())
    a.poll(0, 1)
    b.subscribe(["t"], **rb.callbacks())
    assert b.poll(0, 1) == [] and b.assignment() == set()  # a still holds everything
    a.poll(0, 1)
    b.poll(0, 1)
    assert events == [
        ("a", "assign", [tp("t", 0), tp("t", 1)]),
        ("a", "revoke", [tp("t", 0), tp("t", 1)]),
        ("a", "assign", [tp("t", 0)]),
        ("b", "assign", [tp("t", 1)]),
    ]
    events.clear()
    b.close()
    a.poll(0, 1)
    assert events == [
        ("b", "revoke", [tp("t", 1)]),
        ("a", "revoke", [tp("t", 0)]),
        ("a", "assign", [tp("t", 0), tp("t", 1)]),
    ]


def test_members_resume_from_committed_offsets_after_a_rebalance():
    broker = MemoryBroker()
    broker.admin().ensure_topics(["t"], partitions=2)
    produce(broker, "t", 6)  # three per partition
    a = broker.consumer("g")
    a.subscribe(["t"], on_revoke=lambda tps: a.commit({p: 1 for p in tps}))
    assert len(a.poll(0, 10)) == 6
    b = broker.consumer("g")
    b.subscribe(["t"])
    # a revokes (committing 1 everywhere), gets partition 0 back and reads on from the commit
    assert [(m.partition, m.offset) for m in a.poll(0, 10)] == [(0, 1), (0, 2)]
    assert [(m.partition, m.offset) for m in b.poll(0, 10)] == [(1, 1), (1, 2)]


def test_lost_partitions_get_on_lost_and_cannot_be_committed():
    broker = MemoryBroker()
    produce(broker, "t", 2)
    consumer = broker.consumer("g")
    recorder = Recorder()
    consumer.subscribe(["t"], **recorder.callbacks())
    consumer.poll(0, 1)
    broker.force_rebalance("g", lost=True)
    with pytest.raises(TransportError):
        consumer.commit({tp("t", 0): 1})
    consumer.poll(0, 1)
    assert [kind for _, kind, _ in recorder.events] == ["assign", "lost", "assign"]
    consumer.commit({tp("t", 0): 1})  # the new generation can commit again


def test_a_removed_member_loses_its_partitions_to_the_others_at_once_and_rejoins_under_a_new_id():
    broker = MemoryBroker()
    produce(broker, "t", 1)
    dead, successor = broker.consumer("g"), broker.consumer("g")
    recorder = Recorder()
    dead.subscribe(["t"], **recorder.callbacks())
    dead.poll(0, 1)
    dead_id = dead.member_id()
    successor.subscribe(["t"])
    assert successor.poll(0, 1) == [] and not successor.assignment()  # waits for the silent member
    assert broker.admin().remove_members("g", [dead_id, "nobody"]) == {
        dead_id: None,
        "nobody": "UnknownMemberIdError",
    }
    successor.poll(0, 1)
    assert successor.assignment() == {tp("t", 0)}
    dead.poll(0, 1)  # it was alive after all: it hears it lost them, and joins again
    assert [kind for _, kind, _ in recorder.events][:2] == ["assign", "lost"]
    assert dead.member_id() not in (None, dead_id)


def test_on_revoke_stands_in_for_a_missing_on_lost():
    broker = MemoryBroker()
    produce(broker, "t", 1)
    consumer = broker.consumer("g")
    recorder = Recorder()
    consumer.subscribe(["t"], **recorder.callbacks(with_lost=False))
    consumer.poll(0, 1)
    broker.force_rebalance("g", lost=True)
    consumer.poll(0, 1)
    assert [kind for _, kind, _ in recorder.events] == ["assign", "revoke", "assign"]


def test_a_failing_on_revoke_propagates_and_runs_again():
    broker = MemoryBroker()
    produce(broker, "t", 1)
    consumer = broker.consumer("g")
    calls = []

    def on_revoke(tps):
        calls.append(sorted(tps))
        if len(calls) == 1:
            raise RuntimeError("checkpoint failed")

    consumer.subscribe(["t"], on_revoke=on_revoke)
    consumer.poll(0, 1)
    broker.force_rebalance("g")
    with pytest.raises(RuntimeError, match="checkpoint failed"):
        consumer.poll(0, 1)
    consumer.poll(0, 1)
    assert calls == [[tp("t", 0)], [tp("t", 0)]]
    assert consumer.assignment() == {tp("t", 0)}


def test_force_rebalance_needs_members():
    with pytest.raises(ValueError):
        MemoryBroker().force_rebalance("nobody")


# -- admin -------------------------------------------------------------------------------------------------


def test_ensure_topics_creates_only_what_is_missing():
    broker = MemoryBroker()
    admin = broker.admin()
    admin.ensure_topics(["a", "b"], partitions=3)
    admin.ensure_topics(["a", "c"], partitions=1)
    assert (broker.partitions("a"), broker.partitions("b"), broker.partitions("c")) == (3, 3, 1)
    with pytest.raises(TypeError):
        admin.ensure_topics("a")


def test_unreachable_admin():
    broker = MemoryBroker()
    admin = broker.admin(reachable=False)
    assert admin.is_reachable(0.1) is False
    with pytest.raises(BrokerUnavailable):
        admin.ensure_topics(["a"])
    admin.reachable = True
    assert admin.is_reachable(0.1) is True
