"""The kafka-python reader (``KafkaReaderAdapter``): a ``KafkaConsumer`` with ``group_id=None`` that reads
one partition from an offset (``assign`` + ``seek``); it joins no group and commits nothing.

A topic that does not exist (yet) reads as empty: ``poll`` returns ``[]`` and its records are read once
it is created. Reading never creates it (see ``client._no_topic_creation``). While it waits, kafka-python
asks for the topic's metadata every ``retry_backoff_ms`` (100 ms) and logs "Topic ... not found in cluster
metadata" at ERROR (logger ``kafka.cluster``) each time.

An offset outside the partition's log (past its end, or no longer kept) is out of range: Apache Kafka
says so and the reader starts at the log's start (``auto_offset_reset="earliest"``, as the consumer
adapter); Tansu 0.6 answers with nothing until a record is there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import kafka.errors as kerr
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

from activestream.transport.base import Message, Reader, TopicPartition
from activestream.transport.errors import TransportError
from activestream.transport.kafka.client import (
    _client_config,
    _messages,
    _no_topic_creation,
    _translate,
    _translated,
)
from activestream.transport.options import DEFAULT_CLIENT_ID, FromSettings

__all__ = ["KafkaReaderAdapter"]

log = logging.getLogger(__name__)


class KafkaReaderAdapter(FromSettings, Reader):
    """Reads one partition from an offset, outside any consumer group (see the module docstring)."""

    # No group settings: a reader must not act for (or commit into) the service's consumer group.
    SETTINGS = ("fetch_max_wait_ms",)

    def __init__(
        self,
        *,
        bootstrap_servers: str | Sequence[str],
        client_id: str = DEFAULT_CLIENT_ID,
        fetch_max_wait_ms: int = 500,
        request_timeout_ms: int = 30_000,
        bootstrap_timeout_ms: int = 30_000,
        security: Mapping[str, Any] | None = None,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._request_timeout_ms = request_timeout_ms
        config = _client_config(
            bootstrap_servers,
            client_id,
            security,
            kafka_options,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            allow_auto_create_topics=False,
            fetch_max_wait_ms=fetch_max_wait_ms,
            request_timeout_ms=request_timeout_ms,
            bootstrap_timeout_ms=bootstrap_timeout_ms,
        )
        with _translated("creating the Kafka reader"):
            self._consumer = KafkaConsumer(**config)
        if not config["allow_auto_create_topics"]:
            _no_topic_creation(self._consumer)
        self._assigned = False
        self._closed = False

    def assign(self, tp: TopicPartition, offset: int) -> None:
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be an int >= 0, got {offset!r}")
        self._check_open()
        ktp = KafkaTopicPartition(tp.topic, tp.partition)
        with _translated(f"assigning {tp}"):
            self._consumer.assign([ktp])
            self._consumer.seek(ktp, offset)
        self._assigned = True

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        self._check_open()
        if not self._assigned:
            raise RuntimeError("poll() before assign()")
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        try:
            batch = self._consumer.poll(timeout_ms=max(0, int(timeout_s * 1000)), max_records=max_records)
        except kerr.KafkaError as exc:
            raise _translate(exc, "polling") from exc
        return _messages(batch)

    def end_offset(self, tp: TopicPartition) -> int:
        """``ListOffsets(latest)``, or the high watermark of the last fetch if larger (see ``Reader``)."""
        self._check_open()
        ktp = KafkaTopicPartition(tp.topic, tp.partition)
        with _translated(f"finding the end of {tp}"):
            listed = self._consumer.end_offsets([ktp], timeout_ms=self._request_timeout_ms).get(ktp)
        fetched = self._consumer.highwater(ktp) if ktp in self._consumer.assignment() else None
        return max(listed or 0, fetched or 0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._consumer.close(autocommit=False, timeout_ms=self._request_timeout_ms)
        except kerr.KafkaError as exc:
            log.warning("closing the Kafka reader: %s: %s", type(exc).__name__, exc)

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("reader is closed")
