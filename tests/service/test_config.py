"""Settings: environment variables, validation messages that name the variable, the reference table."""

from __future__ import annotations

import pytest

from activestream.config import (
    ConfigError,
    SecurityProtocol,
    Settings,
    env_var,
    load_settings,
    settings_table_markdown,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("ACTIVESTREAM_"):
            monkeypatch.delenv(name)


def test_defaults():
    settings = load_settings()
    assert settings.bootstrap_servers == "localhost:9092"
    assert (
        settings.events_topic,
        settings.requests_topic,
        settings.labels_topic,
        settings.dead_letter_topic,
    ) == (
        "events",
        "label-requests",
        "labels",
        "dead-letters",
    )
    assert settings.budget == 0.1 and settings.label_ttl_seconds == 86400
    assert settings.security_protocol is SecurityProtocol.PLAINTEXT


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("ACTIVESTREAM_BUDGET", "0.02")
    monkeypatch.setenv("ACTIVESTREAM_EVENTS_TOPIC", "clicks")
    monkeypatch.setenv("ACTIVESTREAM_LOG_LEVEL", "debug")
    monkeypatch.setenv("ACTIVESTREAM_METRICS_PORT", "0")
    settings = load_settings()
    assert (settings.budget, settings.events_topic, settings.log_level, settings.metrics_port) == (
        0.02,
        "clicks",
        "DEBUG",
        0,
    )


def test_each_bad_variable_gets_one_line_naming_it(monkeypatch):
    monkeypatch.setenv("ACTIVESTREAM_BUDGET", "0")
    monkeypatch.setenv("ACTIVESTREAM_MAX_POLL_RECORDS", "many")
    monkeypatch.setenv("ACTIVESTREAM_MODEL", "svm")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    lines = str(raised.value).splitlines()[1:]
    assert len(lines) == 3
    assert any(line.strip().startswith("ACTIVESTREAM_BUDGET: ") for line in lines)
    assert any(
        line.strip().startswith("ACTIVESTREAM_MAX_POLL_RECORDS: ") and "'many'" in line for line in lines
    )
    assert any(line.strip().startswith("ACTIVESTREAM_MODEL: ") and "logreg" in line for line in lines)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("measure", "telepathy"),
        ("policy", "always"),
        ("budget", 1.5),
        ("security_protocol", "TLS"),
        ("sasl_mechanism", "GSSAPI"),
        ("metrics_port", 70000),
        ("dead_letter_max_ratio", 0),
        ("log_level", "LOUD"),
    ],
)
def test_invalid_values_are_refused(field, value):
    with pytest.raises(ConfigError, match=env_var(field)):
        load_settings(**{field: value})


def test_topics_must_differ():
    with pytest.raises(ConfigError, match="four different topics"):
        load_settings(labels_topic="events")


def test_heartbeat_must_be_below_session_timeout():
    with pytest.raises(ConfigError, match="ACTIVESTREAM_HEARTBEAT_INTERVAL_MS"):
        load_settings(heartbeat_interval_ms=10_000, session_timeout_ms=10_000)


def test_sasl_needs_mechanism_user_and_password_and_never_echoes_the_password(monkeypatch):
    monkeypatch.setenv("ACTIVESTREAM_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("ACTIVESTREAM_SASL_PASSWORD", "s3cret-pw")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert "ACTIVESTREAM_SASL_MECHANISM" in message and "ACTIVESTREAM_SASL_USERNAME" in message
    assert "s3cret-pw" not in message


def test_sasl_kwargs_for_kafka_python():
    settings = load_settings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="u",
        sasl_password="p",
    )
    assert settings.kafka_security_kwargs() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }
    assert "'p'" not in repr(settings) and "**********" in repr(settings)


def test_ssl_files_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="ACTIVESTREAM_SSL_CAFILE: no such file"):
        load_settings(security_protocol="SSL", ssl_cafile=tmp_path / "missing.pem")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings(security_protocol="SSL", ssl_cafile=ca)
    assert settings.kafka_security_kwargs() == {"security_protocol": "SSL", "ssl_cafile": str(ca)}
    ca.unlink()  # checked again when the kwargs are built
    with pytest.raises(ConfigError, match="no such file"):
        settings.kafka_security_kwargs()


def test_the_table_documents_every_option():
    table = settings_table_markdown()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} needs a description"
        assert f"| `{name}` | `{env_var(name)}` |" in table
    assert "| `budget` | `ACTIVESTREAM_BUDGET` | `0.1` |" in table
    assert "| `sasl_password` | `ACTIVESTREAM_SASL_PASSWORD` | (unset) |" in table


def test_the_service_defaults_to_the_core_default_strategy():
    from activestream.learner import DEFAULT_MEASURE, DEFAULT_POLICY

    settings = Settings()
    assert (settings.measure, settings.policy) == (DEFAULT_MEASURE, DEFAULT_POLICY)
