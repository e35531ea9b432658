"""The confluent-kafka transport's failure paths: a missing package, security settings and their errors,
an oversize record, and a broker outage under the running service (``ACTIVESTREAM_TRANSPORT=confluent``).

The contract tests themselves run on both transports in tests/integration/test_kafka_transport.py.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import time
from typing import ClassVar

import pytest
from reliability_tools import free_port, run_outage

from activestream.app import build_service
from activestream.config import ConfigError, load_settings
from activestream.demo.broker import EmbeddedBroker
from activestream.demo.proxy import TcpProxy
from activestream.messages import fit_dead_letter
from activestream.transport.base import TopicPartition
from activestream.transport.errors import BrokerUnavailable, DeliveryError, TransportError

confluent = pytest.importorskip("activestream.transport.confluent", reason="pip install 'activestream[fast]'")

SECRET = "pw-Zq8#1c7e5d0b9a"
SASL = {"sasl_mechanism": "PLAIN", "sasl_username": "alice", "sasl_password": SECRET}


# -- selection --------------------------------------------------------------------------------------------


def test_without_confluent_kafka_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # what an install without the extra has
    settings = load_settings(transport="confluent", checkpoint_path=tmp_path / "state.ckpt")
    with pytest.raises(ConfigError) as raised:
        build_service(settings)
    assert "ACTIVESTREAM_TRANSPORT=confluent" in str(raised.value)
    assert "pip install 'activestream[fast]'" in str(raised.value)
    monkeypatch.delitem(sys.modules, "activestream.transport.confluent")
    with pytest.raises(ImportError, match=r"pip install 'activestream\[fast\]'"):
        importlib.import_module("activestream.transport.confluent")


def test_an_unknown_transport_is_refused_readably():
    with pytest.raises(ConfigError, match="ACTIVESTREAM_TRANSPORT"):
        load_settings(transport="zeromq")


def test_the_missing_package_stops_the_cli_with_exit_code_2(monkeypatch, capsys):
    from activestream import cli

    monkeypatch.setitem(sys.modules, "confluent_kafka", None)
    monkeypatch.setenv("ACTIVESTREAM_TRANSPORT", "confluent")
    assert cli.main(["post-label", "--event-id", "e1", "--label", "1"]) == 2
    assert "activestream[fast]" in capsys.readouterr().err


# -- poll: batching and errors in the message stream (librdkafka stood in for) ------------------------------


class Record:
    """A librdkafka message (``confluent_kafka.Message`` cannot be built in Python)."""

    def __init__(self, offset: int, error=None, topic: str = "events"):
        self._offset, self._error, self._topic = offset, error, topic

    def error(self):
        return self._error

    def topic(self):
        return self._topic

    def partition(self):
        return 0

    def offset(self):
        return self._offset

    def value(self):
        return b"{}"

    def key(self):
        return None

    def headers(self):
        return None

    def timestamp(self):
        return (confluent.ck.TIMESTAMP_CREATE_TIME, 1)


class FakeConsumer:
    """Answers ``consume`` from a script of batches and records each call."""

    def __init__(self, *batches: list[Record]):
        self.batches, self.calls = list(batches), []

    def consume(self, num_messages: int, timeout: float) -> list[Record]:
        self.calls.append((num_messages, timeout))
        return self.batches.pop(0) if self.batches else []


def adapter_on(fake: FakeConsumer):
    adapter = object.__new__(confluent.ConfluentConsumerAdapter)  # no client: only poll() is exercised
    adapter.__dict__.update(
        _consumer=fake,
        _callbacks={"assign": None},
        _callback_error=None,
        _pending_error=None,
        _assigned=set(),
        _sought=None,
        _fair=confluent.FairShare(),
        _fair_partitions={},
        _closed=False,
    )
    return adapter


def test_poll_returns_what_is_there_at_once_and_otherwise_waits_for_the_first_message():
    fake = FakeConsumer([Record(0), Record(1)])
    assert [m.offset for m in adapter_on(fake).poll(5.0, 100)] == [0, 1]
    assert fake.calls == [(100, 0)]  # never librdkafka's "wait until 100 arrived or 5 s passed"
    fake = FakeConsumer([], [Record(0)], [Record(1), Record(2)])
    assert [m.offset for m in adapter_on(fake).poll(5.0, 100)] == [0, 1, 2]
    assert fake.calls == [(100, 0), (1, 5.0), (99, 0)]


def test_errors_in_the_stream_are_raised_after_the_messages_fetched_with_them():
    KafkaError = confluent.KafkaError
    down = Record(-1, KafkaError(KafkaError._ALL_BROKERS_DOWN))
    eof = Record(-1, KafkaError(KafkaError._PARTITION_EOF))
    missed = Record(-1, KafkaError(KafkaError._MAX_POLL_EXCEEDED))  # on_lost tells the owner
    adapter = adapter_on(FakeConsumer([Record(0), eof, missed, down, Record(1)]))
    assert [m.offset for m in adapter.poll(0.1, 10)] == [0, 1]  # none lost
    with pytest.raises(BrokerUnavailable, match="_ALL_BROKERS_DOWN"):
        adapter.poll(0.1, 10)
    assert adapter.poll(0.1, 10) == []
    denied = Record(-1, KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    with pytest.raises(TransportError, match="TOPIC_AUTHORIZATION_FAILED"):
        adapter_on(FakeConsumer([denied])).poll(0.1, 10)


# -- fairness: a partition's new records do not wait behind the others' backlog ----------------------------
# (on the broker, both transports: test_labels_are_served_within_a_bound_during_an_events_backlog)

EVENTS, LABELS = TopicPartition("events", 0), TopicPartition("labels", 0)


def test_fair_share_refuses_a_share_below_one():
    with pytest.raises(ValueError, match="share"):
        confluent.FairShare(share=0)


def test_a_pause_ends_at_its_limit_when_the_starved_partition_delivers_nothing():
    fair = confluent.FairShare(share=100, pause_limit_s=2.0)
    highs = {EVENTS: 10_000, LABELS: 5}
    assert fair.observe({EVENTS: 100}, 100, {EVENTS: 10_000, LABELS: 0}, now=0.0) == (set(), set())
    assert fair.observe({EVENTS: 200}, 100, highs, now=0.1) == (set(), set())
    assert fair.observe({EVENTS: 300}, 101, highs, now=0.2) == ({EVENTS}, set())
    # Paused: the paused partition's own unread records do not make it starved in turn.
    assert fair.observe({}, 0, highs, now=1.0) == (set(), set()) and fair.waited[EVENTS] == 0
    # Labels never came (their watermark counted a transaction marker): resume, and do not pause again
    # for the same watermark.
    assert fair.observe({}, 0, highs, now=2.3) == (set(), {EVENTS})
    assert fair.observe({EVENTS: 1000}, 700, highs, now=2.4) == (set(), set())
    assert fair.next[LABELS] == 5 and fair.paused == set()


def test_a_seek_or_an_unknown_watermark_never_counts_as_unread():
    fair = confluent.FairShare(share=10)
    assert fair.observe({EVENTS: 50}, 50, {EVENTS: 90, LABELS: -1001}, now=0.0) == (set(), set())
    assert LABELS not in fair.next  # no fetch seen yet: nothing known
    fair.sought(LABELS, 7)  # the owner rewound: offsets 7.. are unread
    assert fair.observe({EVENTS: 100}, 50, {EVENTS: 190, LABELS: 9}, now=0.1) == ({EVENTS}, set())
    fair.reset()
    assert (fair.next, fair.waited, fair.paused, fair.starved) == ({}, {}, set(), set())


class FairConsumer(FakeConsumer):
    """``FakeConsumer`` with high watermarks, pause/resume and unassign, recorded."""

    def __init__(self, highs, *batches):
        super().__init__(*batches)
        self.highs, self.done = highs, []

    def get_watermark_offsets(self, tp, cached=False):
        if tp.topic == "broken":
            raise confluent.KafkaException(confluent.KafkaError(confluent.KafkaError._UNKNOWN_PARTITION))
        return (0, self.highs[tp.topic])

    def pause(self, tps):
        self.done.append(("pause", [tp.topic for tp in tps]))

    def resume(self, tps):
        self.done.append(("resume", [tp.topic for tp in tps]))

    def unassign(self):
        self.done.append(("unassign", []))


def fair_adapter(fake: FairConsumer, *tps: TopicPartition):
    adapter = adapter_on(fake)
    adapter._fair = confluent.FairShare(share=2)
    adapter._assigned = set(tps)
    adapter._fair_partitions = {tp: confluent._ck(tp) for tp in tps}
    return adapter


def test_the_consumer_pauses_the_others_for_a_starved_partition_and_resumes_them_when_it_was_served():
    fake = FairConsumer(
        {"events": 100, "labels": 0},
        [Record(0), Record(1)],
        [Record(2), Record(3)],
        [Record(4), Record(5)],
        [Record(0, topic="labels")],
    )
    adapter = fair_adapter(fake, EVENTS, LABELS)
    adapter.poll(0.1, 10)
    fake.highs["labels"] = 1  # a label was fetched, behind the events already queued
    adapter.poll(0.1, 10)
    assert fake.done == []
    adapter.poll(0.1, 10)
    assert fake.done == [("pause", ["events"])]
    assert [m.topic for m in adapter.poll(0.1, 10)] == ["labels"]
    assert fake.done == [("pause", ["events"]), ("resume", ["events"])]


def test_a_revoke_while_paused_resumes_before_unassigning_and_a_broken_watermark_is_unknown():
    fake = FairConsumer({"events": 100, "labels": 5}, [Record(0), Record(1), Record(2)])
    broken = TopicPartition("broken", 0)
    adapter = fair_adapter(fake, EVENTS, LABELS, broken)
    adapter._fair.sought(LABELS, 0)
    adapter.poll(0.1, 10)
    assert fake.done == [("pause", ["broken", "events"])] and adapter._fair.next.get(broken) is None
    adapter._on_revoke(fake, [confluent._ck(EVENTS), confluent._ck(LABELS), confluent._ck(broken)])
    assert fake.done[1:] == [("resume", ["broken", "events"]), ("unassign", [])]
    assert adapter._fair.paused == set() and adapter.assignment() == set()


# -- security settings ------------------------------------------------------------------------------------


class Recorder:
    """Stands in for a confluent-kafka client class and records the configuration it was built with."""

    calls: ClassVar[list[tuple[str, dict]]] = []

    def __init__(self, name: str):
        self.name = name

    def __call__(self, config):
        Recorder.calls.append((self.name, dict(config)))
        return self

    def __getattr__(self, item):  # whatever the adapter calls on the client
        return lambda *a, **k: None


def test_sasl_ssl_settings_reach_every_client_under_librdkafka_names(monkeypatch, tmp_path):
    files = {}
    for field in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        files[field] = tmp_path / f"{field}.pem"
        files[field].write_text("-----BEGIN-----\n")
    settings = load_settings(security_protocol="SASL_SSL", **SASL, **files)
    Recorder.calls = []
    monkeypatch.setattr(confluent.ck, "Consumer", Recorder("Consumer"))
    monkeypatch.setattr(confluent.ck, "Producer", Recorder("Producer"))
    monkeypatch.setattr(confluent.admin, "AdminClient", Recorder("AdminClient"))  # where admin.py looks it up
    confluent.ConfluentConsumerAdapter.from_settings(settings)
    confluent.ConfluentProducerAdapter.from_settings(settings)
    confluent.ConfluentAdminAdapter.from_settings(settings)
    expected = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "alice",
        "sasl.password": SECRET,
        "ssl.ca.location": str(files["ssl_cafile"]),
        "ssl.certificate.location": str(files["ssl_certfile"]),
        "ssl.key.location": str(files["ssl_keyfile"]),
    }
    assert [name for name, _ in Recorder.calls] == ["Consumer", "Producer", "AdminClient"]
    for name, config in Recorder.calls:
        assert {k: config.get(k) for k in expected} == expected, name
        assert config["logger"] is confluent.rdkafka_log, name  # librdkafka's lines go to Python logging
    consumer = Recorder.calls[0][1]
    assert consumer["enable.auto.commit"] is False and consumer["enable.auto.offset.store"] is False
    assert consumer["partition.assignment.strategy"] == "range"  # eager, as the contract's callbacks
    assert consumer["session.timeout.ms"] == settings.session_timeout_ms
    assert consumer["fetch.wait.max.ms"] == settings.fetch_max_wait_ms
    assert Recorder.calls[1][1]["message.max.bytes"] == settings.max_message_bytes


def test_an_unreadable_certificate_is_a_readable_error_without_the_password(tmp_path, caplog):
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    settings = load_settings(security_protocol="SASL_SSL", ssl_cafile=garbage, **SASL)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValueError) as raised:
        confluent.ConfluentConsumerAdapter.from_settings(settings)
    assert "ssl.ca.location" in str(raised.value)
    assert SECRET not in str(raised.value) and SECRET not in caplog.text


@pytest.mark.broker
def test_a_broker_refusing_sasl_is_unreachable_and_no_log_line_carries_the_password(broker, caplog):
    """Tansu speaks no SASL: the handshake fails, librdkafka retries, and logs it — never the password."""
    settings = load_settings(
        bootstrap_servers=broker.bootstrap_servers, security_protocol="SASL_PLAINTEXT", **SASL
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TransportError):
        confluent.ConfluentProducerAdapter.from_settings(settings, bootstrap_timeout_ms=1500)
    admin = confluent.ConfluentAdminAdapter.from_settings(settings)
    assert admin.is_reachable(1.0) is False
    admin.close()
    assert "librdkafka" in caplog.text  # it did log what went wrong
    assert SECRET not in caplog.text


# -- record size ------------------------------------------------------------------------------------------


@pytest.mark.broker
def test_an_oversize_record_raises_and_its_fitted_dead_letter_goes_through(broker, unique_name):
    topic, limit = unique_name("size"), 20_000
    admin = confluent.ConfluentAdminAdapter(bootstrap_servers=broker.bootstrap_servers)
    admin.ensure_topics([topic])
    admin.close()
    producer = confluent.ConfluentProducerAdapter(
        bootstrap_servers=broker.bootstrap_servers, max_message_bytes=limit
    )
    try:
        with pytest.raises(DeliveryError) as raised:
            producer.produce(topic, b"x" * (limit + 1))
        assert raised.value.failures[0][0] == topic
        value, truncated = fit_dead_letter(b"x" * (limit + 1), limit)
        headers = [("activestream.reason", b"oversize"), ("activestream.detail", b"d" * 500), *truncated]
        producer.produce(topic, value, b"key", headers)
        producer.flush(10.0)
    finally:
        producer.close()


# -- broker outage ----------------------------------------------------------------------------------------


@pytest.mark.broker
def test_consumer_and_producer_ride_out_an_outage_and_lose_nothing(unique_name):
    """Every connection goes through a proxy the broker advertises; cut it, then restore it."""
    topic, port = unique_name("outage"), free_port()
    with (
        TcpProxy("127.0.0.1", port) as proxy,
        EmbeddedBroker(port=port, advertised_port=proxy.port),
    ):
        servers = proxy.address  # librdkafka keeps its bootstrap connection: make it the proxy's too
        admin = confluent.ConfluentAdminAdapter(bootstrap_servers=servers, request_timeout_ms=2000)
        admin.ensure_topics([topic])
        producer = confluent.ConfluentProducerAdapter(bootstrap_servers=servers)
        consumer = confluent.ConfluentConsumerAdapter(
            bootstrap_servers=servers,
            group_id=unique_name("g"),
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        consumer.subscribe([topic])
        got: list[int] = []

        def read(until: int, timeout_s: float = 30.0) -> None:
            deadline = time.monotonic() + timeout_s
            while len(got) < until and time.monotonic() < deadline:
                with contextlib.suppress(BrokerUnavailable):  # what the service's loop waits out
                    got.extend(m.offset for m in consumer.poll(0.2, 100))

        for i in range(10):
            producer.produce(topic, b"%d" % i)
        producer.flush(10.0)
        read(10)
        assert got == list(range(10))

        proxy.drop_all()
        assert admin.is_reachable(1.0) is False
        for i in range(10, 20):
            producer.produce(topic, b"%d" % i)
        with pytest.raises(DeliveryError) as raised:
            producer.flush(1.0)
        assert raised.value.unacknowledged == 10 and not raised.value.failures  # retried, not failed
        read(20, timeout_s=2.0)
        assert got == list(range(10))

        proxy.restore()
        producer.flush(30.0)  # the retries went through
        read(20)
        assert got == list(range(20))  # in order, none lost, none twice
        assert admin.is_reachable(5.0) is True
        consumer.commit({consumer_tp(topic): 20})
        assert consumer.committed(consumer_tp(topic)) == 20
        consumer.close()
        producer.close()
        admin.close()


def consumer_tp(topic: str):
    from activestream.transport.base import TopicPartition

    return TopicPartition(topic, 0)


@pytest.mark.broker
def test_the_service_on_confluent_rides_out_an_outage(unique_name, tmp_path):
    """The reliability suite's outage (tests/reliability/test_broker_outage.py) with the fast transport:
    readiness follows the broker, liveness stays, no restart, every label learned once."""
    port = free_port()
    with (
        TcpProxy("127.0.0.1", port) as proxy,
        EmbeddedBroker(port=port, advertised_port=proxy.port),
    ):
        seen = run_outage(proxy, tmp_path, unique_name, 12.0, transport="confluent")
    assert all(healthz == 200 for _, healthz, _ in seen["during"]), "liveness must not depend on the broker"
    assert seen["not_ready_after_s"] is not None and seen["not_ready_after_s"] < 5, "/readyz stayed 200"
    # An outage longer than the session timeout costs the member its partitions; librdkafka learns that
    # only once it reconnects, sometimes just after /readyz turned 200 again, and readiness then dips
    # for the rejoin (not assigned is not ready: correct). So liveness must hold throughout, and
    # readiness once the service has caught up.
    assert all(healthz == 200 for _, healthz, _ in seen["after"])
    assert seen["caught_up"] and all(
        healthz == 200 and readyz == 200 for _, healthz, readyz in seen["caught_up"]
    )
    assert seen["restarts"] == 1, "the service recovered by itself, without a restart"
    verdict = seen["verdict"]
    assert verdict.problems == [], verdict.as_dict()
    assert verdict.labels_posted > 50 and seen["labels_during_outage"] > 0
