"""Topic creation and broker reachability on librdkafka's ``AdminClient`` (``ConfluentAdminAdapter``)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from activestream.transport.base import Admin
from activestream.transport.confluent.client import client_config, log, serve_logs
from activestream.transport.confluent.errors import error_of, translate, translating
from activestream.transport.errors import BrokerUnavailable, TransportError
from activestream.transport.options import (
    ADMIN_OPTIONAL_SETTINGS,
    DEFAULT_CLIENT_ID,
    FromSettings,
    checked_topics,
)

__all__ = ["ConfluentAdminAdapter"]


class ConfluentAdminAdapter(FromSettings, Admin):
    """Topic creation and reachability checks through librdkafka's ``AdminClient``."""

    OPTIONAL_SETTINGS = ADMIN_OPTIONAL_SETTINGS

    def __init__(
        self,
        *,
        bootstrap_servers: str | Sequence[str],
        client_id: str = DEFAULT_CLIENT_ID,
        replication_factor: int = 1,
        request_timeout_ms: int = 10_000,
        bootstrap_timeout_ms: int = 10_000,
        security: Mapping[str, Any] | None = None,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        if replication_factor < 1:
            raise ValueError("replication_factor must be >= 1")
        self._replication_factor = replication_factor
        self._request_timeout_s = request_timeout_ms / 1000
        self._bootstrap_timeout_s = bootstrap_timeout_ms / 1000
        # For remove_members, which goes through kafka-python (see there).
        self._kafka_python = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "request_timeout_ms": request_timeout_ms,
            "bootstrap_timeout_ms": bootstrap_timeout_ms,
            "security": security,
        }
        config = client_config(
            bootstrap_servers,
            client_id,
            security,
            kafka_options,
            **{"socket.timeout.ms": request_timeout_ms},
        )
        # Creating it never talks to the broker: it cannot fail because the broker is down.
        with translating("creating the Kafka admin client"):
            self._admin: AdminClient | None = AdminClient(config)

    def _client(self) -> AdminClient:
        if self._admin is None:
            raise TransportError("admin client is closed")
        return self._admin

    def ensure_topics(self, topics: Sequence[str], partitions: int = 1) -> None:
        topics = checked_topics(topics)
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        wanted = list(dict.fromkeys(topics))
        if not wanted:
            return
        admin = self._client()
        with translating("ensuring topics"):
            existing = set(admin.list_topics(timeout=self._bootstrap_timeout_s).topics)
            missing = [t for t in wanted if t not in existing]
            if not missing:
                return
            futures = admin.create_topics(
                [NewTopic(t, partitions, self._replication_factor) for t in missing],
                request_timeout=self._request_timeout_s,
                operation_timeout=self._request_timeout_s,
            )
            for topic, future in futures.items():
                try:
                    future.result(timeout=self._request_timeout_s + 1)
                except KafkaException as exc:
                    error = error_of(exc)
                    if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                        continue
                    raise translate(exc, f"creating topic {topic!r}") from exc
            self._wait_for(missing)
        log.info("created topics %s (%d partitions)", missing, partitions)

    def _wait_for(self, topics: list[str]) -> None:
        """Until the metadata lists every topic with its partitions' leaders (as transport.kafka waits)."""
        deadline = time.monotonic() + self._request_timeout_s
        while True:
            listed = self._client().list_topics(timeout=self._request_timeout_s).topics
            ready = all(
                t in listed
                and listed[t].error is None
                and listed[t].partitions
                and all(p.leader >= 0 for p in listed[t].partitions.values())
                for t in topics
            )
            if ready:
                return
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"ensuring topics: {topics} not ready in time")
            time.sleep(0.05)

    def missing_topics(self, topics: Sequence[str]) -> list[str]:
        with translating("listing topics"):
            existing = set(self._client().list_topics(timeout=self._request_timeout_s).topics)
        return [topic for topic in dict.fromkeys(topics) if topic not in existing]

    def partition_count(self, topic: str) -> int | None:
        with translating("describing a topic"):
            found = self._client().list_topics(timeout=self._request_timeout_s).topics.get(topic)
        return None if found is None or found.error is not None else len(found.partitions)

    def is_reachable(self, timeout_s: float) -> bool:
        """True when the broker answered a metadata request within ``timeout_s``."""
        admin = self._admin
        if admin is None:
            return False
        try:
            admin.list_topics(timeout=max(0.001, timeout_s))
            return True
        except KafkaException as exc:
            log.debug("broker probe failed: %s", exc)
            return False
        finally:
            serve_logs(admin)

    def remove_members(self, group_id: str, member_ids: Sequence[str]) -> dict[str, str | None]:
        """Through kafka-python's admin client (always installed): librdkafka has no call that removes
        another member from a group. ``kafka_options`` are librdkafka's and are not passed on."""
        from activestream.transport.kafka import KafkaAdminAdapter

        admin = KafkaAdminAdapter(**self._kafka_python)
        try:
            return admin.remove_members(group_id, member_ids)
        finally:
            admin.close()

    def close(self) -> None:
        self._admin = None  # librdkafka's AdminClient has no close(); dropping it releases it
