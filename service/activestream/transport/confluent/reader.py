"""The reader on librdkafka (``ConfluentReaderAdapter``): one partition from an offset, outside any consumer
group.

librdkafka's consumer needs a ``group.id`` even for ``assign()``; the reader uses ``READER_GROUP_ID``,
never subscribes (so it never joins that group) and never commits: ``enable.auto.commit`` and
``enable.auto.offset.store`` are off, and ``assign`` always names the offset, so no committed offset is
ever fetched either. ``poll`` returns as soon as anything is there, like the consumer adapter (``consume``),
and sorts librdkafka's message stream the same way (``our_messages``): a partition EOF or a topic that does
not exist (yet) is no error (``poll`` returns what was read, possibly ``[]``); another error is raised
from ``poll``, after the messages fetched with it were returned. Reading never creates a topic
(librdkafka's ``allow.auto.create.topics`` is off by default). An offset outside the partition's log
starts at the log's start on Apache Kafka (``auto.offset.reset=earliest``, as the consumer adapter; Tansu
0.6 answers with nothing until a record is there).

*Latency*: the first ``assign`` reads at once, but librdkafka fetches at a new offset only after the fetch
in flight returned, so the first records after ``assign`` moved an active reader come up to
``fetch_max_wait_ms`` later (kafka-python's reader: at once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import confluent_kafka as ck
from confluent_kafka import KafkaException

from activestream.transport.base import Message, Reader, TopicPartition
from activestream.transport.confluent.client import client_config, consume, log, reach_broker
from activestream.transport.confluent.errors import translate_error, translating
from activestream.transport.confluent.records import ck_partition, our_messages
from activestream.transport.errors import TransportError
from activestream.transport.options import DEFAULT_CLIENT_ID, FromSettings

__all__ = ["READER_GROUP_ID", "ConfluentReaderAdapter"]

#: The ``group.id`` librdkafka requires; nothing is ever committed under it (``kafka_options`` may set
#: another, e.g. where ACLs allow a reader only certain group names).
READER_GROUP_ID: Final = "activestream-reader"


class ConfluentReaderAdapter(FromSettings, Reader):
    """Reads one partition from an offset on librdkafka (see the module docstring)."""

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
        config = client_config(
            bootstrap_servers,
            client_id,
            security,
            kafka_options,
            **{
                "group.id": READER_GROUP_ID,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": fetch_max_wait_ms,
                "socket.timeout.ms": request_timeout_ms,
            },
        )
        with translating("creating the Kafka reader"):
            self._consumer = ck.Consumer(config)
        try:
            reach_broker(self._consumer, bootstrap_timeout_ms, "connecting the Kafka reader")
        except Exception:
            self._consumer.close()
            raise
        self._request_timeout_s = request_timeout_ms / 1000
        self._assigned = False
        self._pending_error: Exception | None = None
        self._closed = False

    def assign(self, tp: TopicPartition, offset: int) -> None:
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be an int >= 0, got {offset!r}")
        self._check_open()
        with translating(f"assigning {tp}"):
            self._consumer.assign([ck_partition(tp, offset)])  # replaces the previous one, queue and all
        self._assigned = True
        self._pending_error = None  # it was about the partition read before

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        self._check_open()
        if not self._assigned:
            raise RuntimeError("poll() before assign()")
        if self._pending_error is not None:  # reported with messages last time: raise it now
            error, self._pending_error = self._pending_error, None
            raise error
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        messages, errors = our_messages(consume(self._consumer, max_records, timeout_s), "reader")
        if errors:
            translated = translate_error(errors[0], "polling")
            if not messages:
                raise translated
            self._pending_error = translated
        return messages

    def end_offset(self, tp: TopicPartition) -> int:
        """The broker's high watermark, or the one of the last fetch if larger (see ``Reader``)."""
        self._check_open()
        with translating(f"finding the end of {tp}"):
            _, high = self._consumer.get_watermark_offsets(
                ck_partition(tp), timeout=self._request_timeout_s, cached=False
            )
            _, fetched = self._consumer.get_watermark_offsets(ck_partition(tp), cached=True)
        return max(high, fetched, 0)

    def close(self) -> None:
        """Release the client; there is no group to leave and nothing to commit."""
        if self._closed:
            return
        self._closed = True
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("closing the Kafka reader: %s", exc)

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("reader is closed")
