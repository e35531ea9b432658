"""kafka-python client helpers shared by the adapters: error translation and client configuration."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import kafka.errors as kerr

from activestream.transport.errors import BrokerUnavailable, TransportError
from activestream.transport.options import (
    bootstrap_list,
)


def _translate(exc: kerr.KafkaError, action: str) -> Exception:
    """Map a kafka-python exception to the transport's exceptions (see ``transport.errors``)."""
    text = str(exc)
    detail = f"{action}: {text}" if type(exc).__name__ in text else f"{action}: {type(exc).__name__}: {text}"
    if isinstance(exc, kerr.KafkaConfigurationError):
        return ValueError(detail)
    if isinstance(exc, kerr.RetriableError | kerr.BrokerNotAvailableError):
        return BrokerUnavailable(detail)
    return TransportError(detail)


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except kerr.KafkaError as exc:
        raise _translate(exc, action) from exc


def _client_config(
    bootstrap_servers: str | Sequence[str],
    client_id: str,
    security: Mapping[str, Any] | None,
    kafka_options: Mapping[str, Any] | None,
    **config: Any,
) -> dict[str, Any]:
    merged = {"bootstrap_servers": bootstrap_list(bootstrap_servers), "client_id": client_id, **config}
    merged.update(security or {})
    merged.update(kafka_options or {})
    return merged
