"""kafka-python client helpers shared by the adapters: error translation, client configuration and the
conversion of fetched records to the contract's ``Message``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import kafka.errors as kerr
from kafka import KafkaConsumer

from activestream.transport.base import Message
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


def _messages(batch: Mapping[Any, Iterable[Any]]) -> list[Message]:
    """``KafkaConsumer.poll``'s records (per partition, in offset order) as the contract's messages; a
    header without a value becomes ``b""`` and a missing timestamp (``-1``) ``None``."""
    # Positional arguments and no generator for the usual record without headers: this runs per record.
    messages = []
    append = messages.append
    for records in batch.values():
        for r in records:
            headers = tuple((k, v if v is not None else b"") for k, v in r.headers) if r.headers else ()
            timestamp = r.timestamp if r.timestamp is not None and r.timestamp >= 0 else None
            append(Message(r.topic, r.partition, r.offset, r.value, r.key, headers, timestamp))
    return messages


def _no_topic_creation(consumer: KafkaConsumer) -> None:
    """Keep ``consumer``'s metadata requests from creating the topics it asks about.

    kafka-python 3.0.12 accepts ``allow_auto_create_topics`` but never hands it to its cluster metadata,
    which asks with ``allow_auto_topic_creation=True``: a broker that auto-creates topics (Tansu does, with
    its default partition count) would create a topic that was only read.
    """
    cluster = getattr(consumer, "_cluster", None)
    config = getattr(cluster, "config", None)
    if isinstance(config, dict) and "allow_auto_create_topics" in config:
        config["allow_auto_create_topics"] = False
