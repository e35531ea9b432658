"""The kafka-python admin (``KafkaAdminAdapter``): creates missing topics (replication factor configurable,
default 1, tolerant to a concurrent creation) and answers ``is_reachable`` with a metadata request that
never blocks the caller longer than its timeout. The admin client is created lazily, so constructing the
adapter never fails when the broker is down. ``remove_members`` removes a dead member from a group
(``activestream.takeover``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import kafka.errors as kerr
from kafka import KafkaAdminClient
from kafka.admin import MemberToRemove

from activestream.transport.base import (
    Admin,
)
from activestream.transport.errors import TransportError
from activestream.transport.kafka.client import _client_config, _translate, _translated
from activestream.transport.options import (
    ADMIN_OPTIONAL_SETTINGS,
    DEFAULT_CLIENT_ID,
    FromSettings,
    checked_topics,
)

log = logging.getLogger(__name__)


class _Probe:
    """One metadata request on a daemon thread, so a hung connection never blocks the caller."""

    def __init__(self, check: Callable[[], object]) -> None:
        self.done = threading.Event()
        self.ok = False
        threading.Thread(target=self._run, args=(check,), name="activestream-probe", daemon=True).start()

    def _run(self, check: Callable[[], object]) -> None:
        try:
            check()
            self.ok = True
        except Exception as exc:
            log.debug("broker probe failed: %s: %s", type(exc).__name__, exc)
        finally:
            self.done.set()


class KafkaAdminAdapter(FromSettings, Admin):
    """Topic creation and reachability checks through a lazily created ``KafkaAdminClient``."""

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
        self._request_timeout_ms = request_timeout_ms
        self._config = _client_config(
            bootstrap_servers,
            client_id,
            security,
            kafka_options,
            request_timeout_ms=request_timeout_ms,
            bootstrap_timeout_ms=bootstrap_timeout_ms,
        )
        # _lock guards _probe, _admin and _closed and is never held while talking to the broker;
        # _client_lock serialises creating the client (its bootstrap can take bootstrap_timeout_ms).
        self._lock = threading.Lock()
        self._client_lock = threading.Lock()
        self._admin: KafkaAdminClient | None = None
        self._probe: _Probe | None = None
        self._closed = False

    def _client(self) -> KafkaAdminClient:
        with self._client_lock:
            if self._admin is not None:
                return self._admin
            if self._closed:
                raise TransportError("admin client is closed")
            admin = KafkaAdminClient(**self._config)
            with self._lock:
                if not self._closed:
                    self._admin = admin
                    return admin
            admin.close()
            raise TransportError("admin client is closed")

    def ensure_topics(self, topics: Sequence[str], partitions: int = 1) -> None:
        topics = checked_topics(topics)
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        wanted = list(dict.fromkeys(topics))
        if not wanted:
            return
        with _translated("ensuring topics"):
            admin = self._client()
            existing = set(admin.list_topics())
            missing = [t for t in wanted if t not in existing]
            if not missing:
                return
            spec = {"num_partitions": partitions, "replication_factor": self._replication_factor}
            result = admin.create_topics(
                {topic: dict(spec) for topic in missing},
                timeout_ms=self._request_timeout_ms,
                raise_errors=False,
            )
            for entry in result["topics"]:
                code = entry["error_code"]
                if code in (0, kerr.TopicAlreadyExistsError.errno):
                    continue
                error = kerr.for_code(code)
                raise _translate(error(entry.get("error_message") or ""), f"creating topic {entry['name']!r}")
            admin.wait_for_topics(missing, timeout_ms=self._request_timeout_ms)
        log.info("created topics %s (%d partitions)", missing, partitions)

    def missing_topics(self, topics: Sequence[str]) -> list[str]:
        with _translated("listing topics"):
            existing = set(self._client().list_topics())
        return [topic for topic in dict.fromkeys(topics) if topic not in existing]

    def partition_count(self, topic: str) -> int | None:
        with _translated("describing a topic"):
            if topic not in set(self._client().list_topics()):
                return None
            [described] = self._client().describe_topics([topic])
        return len(described["partitions"])

    def is_reachable(self, timeout_s: float) -> bool:
        """True when the broker answered a metadata request within ``timeout_s``.

        The request runs on a helper thread; a probe still in flight from an earlier call is awaited
        instead of starting another, so a hung broker costs at most one thread.
        """
        with self._lock:
            if self._closed:
                return False
            if self._probe is None or self._probe.done.is_set():
                self._probe = _Probe(lambda: self._client().describe_cluster())
            probe = self._probe
        return probe.done.wait(max(0.0, timeout_s)) and probe.ok

    def remove_members(self, group_id: str, member_ids: Sequence[str]) -> dict[str, str | None]:
        if not member_ids:
            return {}
        with _translated("removing group members"):
            answers = self._client().remove_group_members(
                group_id, [MemberToRemove(member_id=m) for m in member_ids]
            )
        return {m: None if error is kerr.NoError else error.__name__ for m, error in answers.items()}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(kerr.KafkaError):
                admin.close()
