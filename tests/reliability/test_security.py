"""Security: SASL/SSL settings validated and handed to kafka-python, the metrics server bound where it is
told, and no secret in the logs (error paths included) nor in dead letters."""

from __future__ import annotations

import io
import itertools
import logging
import os
import subprocess
import sys
from typing import ClassVar

import pytest
from reliability_tools import SERVICE_DIR, ServiceProcess, service_options, wait_for

from activestream import app
from activestream.config import ConfigError, env_var, load_settings
from activestream.service import Service
from activestream.transport import kafka as kafka_transport
from activestream.transport.memory import MemoryBroker

SECRET = "pw-Zq8#1c7e5d0b9a"
SASL_FIELDS = ("sasl_mechanism", "sasl_username", "sasl_password")
SASL_VALUES = {"sasl_mechanism": "SCRAM-SHA-256", "sasl_username": "alice", "sasl_password": SECRET}


# -- validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize(
    "given",
    [c for n in range(3) for c in itertools.combinations(SASL_FIELDS, n)],
    ids=lambda c: "+".join(c) or "nothing",
)
def test_sasl_names_every_missing_setting_and_never_the_password(protocol, given):
    values = {name: SASL_VALUES[name] for name in given}
    with pytest.raises(ConfigError) as raised:
        load_settings(security_protocol=protocol, **values)
    message = str(raised.value)
    missing = [env_var(name) for name in SASL_FIELDS if name not in given]
    assert f"{protocol} needs {', '.join(missing)}" in message
    assert SECRET not in message
    assert message.count("\n") == 1  # one readable line under "invalid configuration:"


def test_an_unknown_mechanism_or_protocol_is_refused_readably():
    with pytest.raises(ConfigError) as raised:
        load_settings(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="GSSAPI",
            sasl_username="u",
            sasl_password=SECRET,
        )
    assert "ACTIVESTREAM_SASL_MECHANISM" in str(raised.value) and SECRET not in str(raised.value)
    with pytest.raises(ConfigError, match="ACTIVESTREAM_SECURITY_PROTOCOL"):
        load_settings(security_protocol="TLS")


@pytest.mark.parametrize("field", ["ssl_cafile", "ssl_certfile", "ssl_keyfile"])
def test_each_missing_ssl_file_is_named_with_its_path(tmp_path, field):
    missing = tmp_path / "nowhere" / f"{field}.pem"
    with pytest.raises(ConfigError) as raised:
        load_settings(security_protocol="SSL", **{field: missing})
    assert f"{env_var(field)}: no such file: {missing}" in str(raised.value)


def test_a_directory_is_not_an_ssl_file(tmp_path):
    with pytest.raises(ConfigError, match="ACTIVESTREAM_SSL_CAFILE: no such file"):
        load_settings(security_protocol="SSL", ssl_cafile=tmp_path)


# -- pass-through to kafka-python ------------------------------------------------------------------------


class Recorder:
    """Stands in for a kafka-python client class and records the keyword arguments it was built with."""

    calls: ClassVar[list[tuple[str, dict]]] = []

    def __init__(self, name: str):
        self.name = name

    def __call__(self, **config):
        Recorder.calls.append((self.name, config))
        return self

    def __getattr__(self, item):  # whatever the adapter calls on the client
        return lambda *a, **k: None


def test_sasl_ssl_settings_reach_every_kafka_client(monkeypatch, tmp_path):
    files = {}
    for field in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        files[field] = tmp_path / f"{field}.pem"
        files[field].write_text("-----BEGIN-----\n")
    settings = load_settings(security_protocol="SASL_SSL", **SASL_VALUES, **files)
    Recorder.calls = []
    for module, name in (
        (kafka_transport.consumer, "KafkaConsumer"),
        (kafka_transport.producer, "KafkaProducer"),
        (kafka_transport.admin, "KafkaAdminClient"),
    ):
        monkeypatch.setattr(module, name, Recorder(name))
    kafka_transport.KafkaConsumerAdapter.from_settings(settings)
    kafka_transport.KafkaProducerAdapter.from_settings(settings)
    kafka_transport.KafkaAdminAdapter.from_settings(settings)._client()  # created lazily
    expected = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "alice",
        "sasl_plain_password": SECRET,
        **{field: str(path) for field, path in files.items()},
    }
    assert [name for name, _ in Recorder.calls] == ["KafkaConsumer", "KafkaProducer", "KafkaAdminClient"]
    for name, config in Recorder.calls:
        assert {k: config.get(k) for k in expected} == expected, name


# -- the metrics server's address -------------------------------------------------------------------------


def listening_addresses(pid: int, port: int) -> set[str]:
    """Local addresses of the LISTEN sockets of ``pid`` on ``port`` (from /proc/<pid>/net/tcp*)."""
    found = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


@pytest.mark.broker
def test_the_metrics_server_binds_the_configured_address_only(broker, unique_name, tmp_path):
    options = service_options(
        broker.bootstrap_servers, unique_name, tmp_path / "state.ckpt", metrics_host="127.0.0.1"
    )
    service = ServiceProcess(options, tmp_path / "service.log").start()
    try:
        port = service.http_port()
        assert listening_addresses(service.process.pid, port) == {"0100007F"}  # 127.0.0.1, not 0.0.0.0
    finally:
        service.ensure_stopped()


# -- no secrets in logs -----------------------------------------------------------------------------------


def run_cli(env_overrides: dict[str, str], timeout_s: float = 30) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVESTREAM_")}
    env["PYTHONPATH"] = str(SERVICE_DIR)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "activestream.cli", "run"],
        env=env,
        capture_output=True,
        timeout=timeout_s,
        text=True,
    )


@pytest.mark.parametrize(
    "env",
    [
        {"ACTIVESTREAM_SECURITY_PROTOCOL": "SASL_SSL"},  # mechanism and user missing
        {
            "ACTIVESTREAM_SECURITY_PROTOCOL": "SASL_SSL",
            "ACTIVESTREAM_SASL_MECHANISM": "PLAIN",
            "ACTIVESTREAM_SASL_USERNAME": "u",
            "ACTIVESTREAM_SSL_CAFILE": "/nonexistent/ca.pem",
        },
        {
            "ACTIVESTREAM_BUDGET": "2",
            "ACTIVESTREAM_SASL_USERNAME": "u",
            "ACTIVESTREAM_SASL_MECHANISM": "NOPE",
        },
    ],
    ids=["sasl-incomplete", "ssl-file-missing", "other-errors"],
)
def test_configuration_errors_never_print_the_password(env):
    result = run_cli({"ACTIVESTREAM_SASL_PASSWORD": SECRET, **env})
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr + result.stdout
    assert SECRET not in result.stderr + result.stdout


@pytest.mark.broker
def test_a_sasl_service_that_cannot_authenticate_never_logs_the_password(broker, unique_name, tmp_path):
    """At DEBUG, against a broker that refuses the SASL handshake: errors, retries, no password."""
    options = service_options(
        broker.bootstrap_servers,
        unique_name,
        tmp_path / "state.ckpt",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="alice",
        sasl_password=SECRET,
        log_level="DEBUG",
    )
    service = ServiceProcess(options, tmp_path / "service.log").start()
    try:
        wait_for(lambda: "SaslHandshake" in service.tail(10**7) or not service.alive, 30, "a SASL handshake")
        wait_for(lambda: service.tail(10**7).count("UnsupportedSaslMechanism") >= 3, 30, "retries")
    finally:
        service.ensure_stopped()
    text = service.log_path.read_text()
    assert text.count("\n") > 20  # it did talk, at length
    assert SECRET not in text


def test_debug_logs_never_carry_the_sasl_plain_password(monkeypatch):
    from kafka.net.sasl.plain import SaslMechanismPlain
    from kafka.protocol.parser import KafkaProtocol
    from kafka.protocol.sasl import SaslAuthenticateRequest

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        app.configure_logging("DEBUG")  # what `activestream run` does with ACTIVESTREAM_LOG_LEVEL=DEBUG
        # What kafka-python's connection does during a SASL PLAIN authentication, step by step.
        mechanism = SaslMechanismPlain(
            host="broker",
            sasl_plain_username="alice",
            sasl_plain_password=SECRET,
            security_protocol="SASL_PLAINTEXT",
        )
        protocol = KafkaProtocol(client_id="activestream", ident="node=1")
        protocol.send_request(SaslAuthenticateRequest(mechanism.auth_bytes(), version=1))
        protocol.send_bytes()
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    logged = stream.getvalue()
    assert "kafka.net.sasl.plain" in logged  # kafka-python's other loggers still get through
    assert "Sending request" not in logged and SECRET not in logged  # but never the request itself


# -- no secrets in dead letters ---------------------------------------------------------------------------


def test_dead_letters_carry_no_secret(tmp_path):
    broker = MemoryBroker()
    settings = load_settings(
        checkpoint_path=tmp_path / "state.ckpt",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="alice",
        sasl_password=SECRET,
        max_message_bytes=500,
    )
    service = Service(settings, broker.consumer(settings.group_id), broker.producer(), broker.admin())
    producer = broker.producer()
    for raw in (b"junk", b'{"id": 1}', b'{"id": "e", "features": {"x": NaN}}', b"x" * 600, b'{"label": 1.5}'):
        producer.produce(settings.events_topic, raw, headers=[("trace", b"t")])
        producer.produce(settings.labels_topic, raw)
    producer.flush(1.0)
    service.start()
    while service.run_once():
        pass
    dead = broker.messages(settings.dead_letter_topic)
    assert len(dead) == 10
    for message in dead:
        blob = (
            (message.value or b"")
            + (message.key or b"")
            + b"".join(k.encode() + v for k, v in message.headers)
        )
        assert SECRET.encode() not in blob and b"alice" not in blob
