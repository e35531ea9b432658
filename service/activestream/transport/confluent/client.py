"""Building a librdkafka client: its configuration (kafka-python security keywords mapped to librdkafka
properties), the first metadata request, its log lines handed to Python logging, and ``consume`` with the
contract's ``poll`` semantics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException

from activestream.transport.confluent.errors import translate
from activestream.transport.options import bootstrap_list

__all__ = [
    "client_config",
    "consume",
    "librdkafka_security",
    "log",
    "rdkafka_log",
    "reach_broker",
    "serve_logs",
]

# The transport's loggers keep the names they had before it was split into modules (log configuration,
# e.g. app.CLIENT_LOGGERS, refers to them).
log = logging.getLogger("activestream.transport.confluent")
#: librdkafka's own log lines (connection failures, retries, ...).
rdkafka_log = logging.getLogger(f"{log.name}.librdkafka")

#: kafka-python security keywords -> librdkafka properties.
_SECURITY_NAMES: Final = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
}


def librdkafka_security(security: Mapping[str, Any] | None) -> dict[str, str]:
    """kafka-python security keywords (``Settings.kafka_security_kwargs()``) as librdkafka properties.

    >>> librdkafka_security({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
    ...                      "sasl_plain_username": "alice", "ssl_cafile": "/etc/ca.pem"})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'security.protocol': 'SASL_SSL', 'sasl.mechanism': 'SCRAM-SHA-256', 'sasl.username': 'alice',
     'ssl.ca.location': '/etc/ca.pem'}
    >>> librdkafka_security({"ssl_crlfile": "x"})
    Traceback (most recent call last):
    ...
    ValueError: security option 'ssl_crlfile' has no librdkafka equivalent here; pass it in kafka_options
    """
    properties = {}
    for name, value in (security or {}).items():
        if name not in _SECURITY_NAMES:
            raise ValueError(
                f"security option {name!r} has no librdkafka equivalent here; pass it in kafka_options"
            )
        if value is not None:
            properties[_SECURITY_NAMES[name]] = str(value)
    return properties


def _log_error(error: KafkaError) -> None:
    # Client-level errors (a broker down, authentication refused): librdkafka retries them by itself.
    rdkafka_log.warning("librdkafka error: %s: %s", error.name(), error.str())


def client_config(
    bootstrap_servers: str | Sequence[str],
    client_id: str,
    security: Mapping[str, Any] | None,
    kafka_options: Mapping[str, Any] | None,
    **config: Any,
) -> dict[str, Any]:
    """A client's librdkafka properties: the common ones, then ``config``, the security mapping and
    ``kafka_options`` (each later one wins)."""
    merged: dict[str, Any] = {
        "bootstrap.servers": ",".join(bootstrap_list(bootstrap_servers)),
        "client.id": client_id,
        "logger": rdkafka_log,
        "error_cb": _log_error,
        **config,
    }
    merged.update(librdkafka_security(security))
    merged.update(kafka_options or {})
    return merged


def reach_broker(client: Any, timeout_ms: int, action: str) -> None:
    """One metadata request: a broker that is down fails here, within ``timeout_ms``."""
    try:
        client.list_topics(timeout=max(0.001, timeout_ms / 1000))
    except KafkaException as exc:
        serve_logs(client)
        raise translate(exc, action) from exc


def consume(client: Any, max_records: int, timeout_s: float) -> list[Any]:
    """At most ``max_records`` of ``client``'s messages (errors included), returned as soon as there is any.

    librdkafka's ``consume(n, timeout)`` waits until ``n`` messages arrived or the timeout passed; the
    contract's ``poll`` returns as soon as there is anything. So: what is there; else wait for one, then
    the rest that is there.
    """
    raw = _consume(client, max_records, 0)
    if not raw and timeout_s > 0:
        raw = _consume(client, 1, timeout_s)
        if raw and max_records > 1:
            raw += _consume(client, max_records - 1, 0)
    return raw


def _consume(client: Any, count: int, timeout_s: float) -> list[Any]:
    try:
        return client.consume(num_messages=count, timeout=timeout_s)
    except KafkaException as exc:
        raise translate(exc, "polling") from exc


def serve_logs(client: Any) -> None:
    """Hand librdkafka's queued log lines and errors to Python logging (they wait for a ``poll``)."""
    with contextlib.suppress(Exception):
        client.poll(0)
