"""The kafka-python producer (``KafkaProducerAdapter``): ``acks="all"``, idempotence on (Tansu accepts it;
turn it off with ``enable_idempotence=False`` for brokers that do not support it), unbounded retries within
``delivery_timeout_ms``, small ``linger_ms``, ``max_request_size`` from ``max_message_bytes``. Every send's
outcome is tracked by a callback; ``flush`` raises ``DeliveryError`` listing the failures since the previous
``flush`` (first one in the message), or the records not acknowledged within the timeout.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import kafka.errors as kerr
from kafka import KafkaProducer

from activestream.transport.base import (
    Producer,
)
from activestream.transport.errors import DeliveryError, TransportError
from activestream.transport.kafka.client import _client_config, _translate, _translated
from activestream.transport.options import (
    DEFAULT_CLIENT_ID,
    PRODUCER_SETTINGS,
    FromSettings,
)

log = logging.getLogger(__name__)


class KafkaProducerAdapter(FromSettings, Producer):
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
        config = _client_config(
            bootstrap_servers,
            client_id,
            security,
            kafka_options,
            acks="all",
            enable_idempotence=enable_idempotence,
            linger_ms=linger_ms,
            max_request_size=max_message_bytes,
            delivery_timeout_ms=delivery_timeout_ms,
            request_timeout_ms=request_timeout_ms,
            max_block_ms=max_block_ms,
            bootstrap_timeout_ms=bootstrap_timeout_ms,
        )
        with _translated("creating the Kafka producer"):
            self._producer = KafkaProducer(**config)
        self._close_timeout_s = close_timeout_s
        self._cond = threading.Condition()
        self._outstanding = 0
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
        with self._cond:
            self._outstanding += 1
        try:
            future = self._producer.send(topic, value=value, key=key, headers=[(k, v) for k, v in headers])
        except BaseException as exc:
            self._settle(None)
            if isinstance(exc, kerr.MessageSizeTooLargeError):
                raise DeliveryError([(topic, exc)]) from exc
            if isinstance(exc, kerr.KafkaError):
                raise _translate(exc, f"producing to {topic!r}") from exc
            raise
        future.add_callback(self._on_delivered).add_errback(self._on_failed, topic)

    def flush(self, timeout_s: float) -> None:
        """Wait for every record produced so far; raise ``DeliveryError`` if any was not acknowledged.

        Each failure is reported once. Records still in flight when the timeout expires are counted in
        ``DeliveryError.unacknowledged``; their eventual outcome is reported by a later ``flush``.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        with contextlib.suppress(kerr.KafkaTimeoutError):  # the count of outstanding records below tells
            self._producer.flush(timeout=max(0.0, timeout_s))
        with self._cond:
            self._cond.wait_for(lambda: self._outstanding == 0, timeout=max(0.0, deadline - time.monotonic()))
            failures, self._failures = self._failures, []
            unacknowledged = self._outstanding
        if failures or unacknowledged:
            raise DeliveryError(failures, unacknowledged)

    def close(self) -> None:
        """Flush (up to ``close_timeout_s``) and stop. Undelivered records are logged, not raised:
        call ``flush`` first to learn about them."""
        if self._closed:
            return
        self._closed = True
        try:
            self._producer.close(timeout=self._close_timeout_s)
        except kerr.KafkaError:
            # kafka-python's close() gives up before stopping its sender thread when records are still
            # unacknowledged; stop that thread so it does not keep retrying for delivery_timeout_ms.
            sender = getattr(self._producer, "_sender", None)
            if sender is not None:
                sender.force_close()
                sender.join(1.0)
            with contextlib.suppress(kerr.KafkaError):
                self._producer.close(timeout=0)
        with self._cond:
            failures, unacknowledged = self._failures, self._outstanding
        if failures or unacknowledged:
            log.error("producer closed with undelivered records: %s", DeliveryError(failures, unacknowledged))

    def _on_delivered(self, _metadata: Any) -> None:
        self._settle(None)

    def _on_failed(self, topic: str, exc: BaseException) -> None:
        self._settle((topic, exc))

    def _settle(self, failure: tuple[str, BaseException] | None) -> None:
        with self._cond:
            self._outstanding -= 1
            if failure is not None:
                self._failures.append(failure)
            self._cond.notify_all()
