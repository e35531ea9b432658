"""The producer on librdkafka (``ConfluentProducerAdapter``): acks=all, idempotent, and a ``flush`` that
reports every failed send."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import confluent_kafka as ck
from confluent_kafka import KafkaError, KafkaException

from activestream.transport.base import Producer
from activestream.transport.confluent.client import client_config, log, reach_broker
from activestream.transport.confluent.errors import error_of, translate, translate_error, translating
from activestream.transport.errors import BrokerUnavailable, DeliveryError, TransportError
from activestream.transport.options import DEFAULT_CLIENT_ID, PRODUCER_SETTINGS, FromSettings

__all__ = ["ConfluentProducerAdapter"]


class ConfluentProducerAdapter(FromSettings, Producer):
    """An acks=all, idempotent producer whose ``flush`` reports every failed send."""

    SETTINGS = PRODUCER_SETTINGS

    def __init__(
        self,
        *,
        bootstrap_servers: str | Sequence[str],
        client_id: str = DEFAULT_CLIENT_ID,
        max_message_bytes: int = 1_048_576,
        enable_idempotence: bool = True,
        linger_ms: int = 5,
        delivery_timeout_ms: int = 120_000,
        request_timeout_ms: int = 30_000,
        max_block_ms: int = 10_000,
        bootstrap_timeout_ms: int = 30_000,
        close_timeout_s: float = 10.0,
        security: Mapping[str, Any] | None = None,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        # librdkafka checks key + value + headers against message.max.bytes, as kafka-python checks
        # max_request_size; its floor is 1000 bytes.
        config = client_config(
            bootstrap_servers,
            client_id,
            security,
            kafka_options,
            **{
                "acks": "all",
                "enable.idempotence": enable_idempotence,
                "linger.ms": linger_ms,
                "message.max.bytes": max(1000, max_message_bytes),
                "delivery.timeout.ms": delivery_timeout_ms,
                "request.timeout.ms": request_timeout_ms,
                "socket.timeout.ms": request_timeout_ms,
            },
        )
        with translating("creating the Kafka producer"):
            self._producer = ck.Producer(config)
        reach_broker(self._producer, bootstrap_timeout_ms, "connecting the Kafka producer")
        self._max_block_s = max_block_ms / 1000
        self._close_timeout_s = close_timeout_s
        self._failures: list[tuple[str, BaseException]] = []
        self._closed = False

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Iterable[tuple[str, bytes]] = (),
    ) -> None:
        if self._closed:
            raise TransportError("producer is closed")
        record_headers = list(headers)
        deadline: float | None = None
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=record_headers or None, on_delivery=self._delivered
                )
                return
            except BufferError:
                # The local queue is full: serve delivery reports (which frees it) for up to max_block_ms.
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self._max_block_s
                if now >= deadline:
                    raise BrokerUnavailable(
                        f"producing to {topic!r}: the local queue stayed full for {self._max_block_s:g} s"
                    ) from None
                self._producer.poll(min(0.1, deadline - now))
            except KafkaException as exc:
                error = error_of(exc)
                if error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    raise DeliveryError([(topic, translate(exc, f"producing to {topic!r}"))]) from exc
                raise translate(exc, f"producing to {topic!r}") from exc

    def flush(self, timeout_s: float) -> None:
        """Wait for every record produced so far; raise ``DeliveryError`` if any was not acknowledged.

        Each failure is reported once. Records still in flight when the timeout expires are counted in
        ``DeliveryError.unacknowledged``; their eventual outcome is reported by a later ``flush``.
        """
        unacknowledged = self._producer.flush(max(0.0, timeout_s))
        failures, self._failures = self._failures, []
        if failures or unacknowledged:
            raise DeliveryError(failures, unacknowledged)

    def close(self) -> None:
        """Flush (up to ``close_timeout_s``) and stop. Undelivered records are logged, not raised:
        call ``flush`` first to learn about them."""
        if self._closed:
            return
        self._closed = True
        unacknowledged = self._producer.flush(self._close_timeout_s)
        if unacknowledged:
            # Stop retrying them: closing must not wait for delivery_timeout_ms.
            self._producer.purge(in_queue=True, in_flight=True, blocking=False)
            self._producer.flush(0)
        failures = self._failures
        with contextlib.suppress(KafkaException, RuntimeError):
            self._producer.close()
        if failures or unacknowledged:
            log.error("producer closed with undelivered records: %s", DeliveryError(failures, unacknowledged))

    def _delivered(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self._failures.append((message.topic(), translate_error(error, "delivering")))
