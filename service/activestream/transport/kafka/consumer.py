"""The kafka-python consumer (``KafkaConsumerAdapter``): a ``KafkaConsumer`` in a consumer group with
``enable_auto_commit=False`` and ``auto_offset_reset="earliest"``; commits only the offsets it is given.

*Rebalance callbacks.* kafka-python 3 runs rebalance listeners on its IO thread, where a blocking consumer
call (``commit``, ``committed``...) raises ``RuntimeError``. The adapter therefore registers an
``AsyncConsumerRebalanceListener`` that runs each callback on a short-lived helper thread and waits for it.
The owner thread stays blocked in ``poll()`` (or ``close()``) for the whole callback, so callbacks never run
concurrently with the owner, may call every method of the consumer (an ``on_revoke`` that commits is the
intended use), and heartbeats keep flowing while they run. Mapping:

- ``on_assign``: after every completed rebalance, with the whole new assignment (eager protocol),
  possibly empty; first called from the first ``poll()`` after ``subscribe``.
- ``on_revoke``: before a rebalance takes partitions away, while the member can still commit; also from
  ``close()``. Only called with a non-empty set.
- ``on_lost``: kafka-python 3 distinguishes KIP-429 "lost" (the member was evicted: session expired,
  unknown member id, fenced); committing is no longer possible. When ``on_lost`` is not given,
  ``on_revoke`` is called instead, as Kafka's Java client does.

An exception raised by a callback propagates out of ``poll()`` (or ``close()``, after the consumer is
closed). kafka-python keeps the membership consistent; a failed ``on_revoke`` runs again at the next
``poll()``.

``commit`` refuses partitions this member does not own (``TransportError``; the broker would accept them and
overwrite the new owner's progress); ``seek`` raises ``ValueError`` for them. ``poll`` before ``subscribe``
raises ``RuntimeError``.

*Static membership* (``group_instance_id``, KIP-345; kafka-python 3 has it, the broker needs API ≥ 2.3): the
member keeps its identity across restarts, so a restarted process rejoins without a rebalance and gets its
partitions back at once, instead of waiting out the dead member's session; in exchange ``close()`` does not
leave the group (the partitions of a member that is gone for good move after ``session_timeout_ms``). Two
live consumers with the same id in one group fence each other. Empty or ``None``: dynamic membership.

*Joining takes time* (Kafka's ``group.initial.rebalance.delay.ms``, 3 s by default; on Tansu about half the
session timeout). kafka-python 3.0.12 discards a JoinGroup answer that arrives while the owner is between
two ``poll()`` calls and sends the JoinGroup again, so keep the time spent outside ``poll()`` short while
the member has no assignment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import kafka.errors as kerr
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.future import Future as KafkaFuture
from kafka.structs import OffsetAndMetadata

from activestream.transport.base import (
    Consumer,
    Message,
    RebalanceCallback,
    TopicPartition,
)
from activestream.transport.errors import TransportError
from activestream.transport.kafka.client import _client_config, _messages, _translate, _translated
from activestream.transport.options import (
    CONSUMER_OPTIONAL_SETTINGS,
    CONSUMER_SETTINGS,
    DEFAULT_CLIENT_ID,
    FromSettings,
    checked_topics,
    rebalance_callbacks,
)

log = logging.getLogger(__name__)


_warned_no_static_membership = False


def _static_membership(group_instance_id: str | None) -> dict[str, str]:
    """``{"group_instance_id": ...}`` when set and this kafka-python supports it; else ``{}`` (a warning,
    once per process, when it is set but unsupported)."""
    global _warned_no_static_membership
    if not group_instance_id:
        return {}
    if "group_instance_id" in KafkaConsumer.DEFAULT_CONFIG:
        return {"group_instance_id": group_instance_id}
    if not _warned_no_static_membership:  # pragma: no cover - depends on the kafka-python version
        _warned_no_static_membership = True
        log.warning(
            "this kafka-python has no static group membership: group_instance_id %r ignored (dynamic member)",
            group_instance_id,
        )
    return {}


class _Listener(AsyncConsumerRebalanceListener):
    """Forwards kafka-python's rebalance events to the adapter (awaited on kafka-python's IO loop)."""

    def __init__(self, adapter: KafkaConsumerAdapter) -> None:
        self._adapter = adapter

    async def on_partitions_revoked(self, revoked: Iterable[KafkaTopicPartition]) -> None:
        await self._adapter._dispatch("revoke", revoked)

    async def on_partitions_assigned(self, assigned: Iterable[KafkaTopicPartition]) -> None:
        await self._adapter._dispatch("assign", assigned)

    async def on_partitions_lost(self, lost: Iterable[KafkaTopicPartition]) -> None:
        await self._adapter._dispatch("lost", lost)


class KafkaConsumerAdapter(FromSettings, Consumer):
    """A consumer-group member on kafka-python 3 (see the module docstring for the behaviour)."""

    SETTINGS = CONSUMER_SETTINGS
    OPTIONAL_SETTINGS = CONSUMER_OPTIONAL_SETTINGS

    def __init__(
        self,
        *,
        bootstrap_servers: str | Sequence[str],
        group_id: str,
        group_instance_id: str | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        session_timeout_ms: int = 45_000,
        heartbeat_interval_ms: int = 3_000,
        max_poll_records: int = 500,
        max_poll_interval_ms: int = 300_000,
        fetch_max_wait_ms: int = 500,
        lag_timeout_ms: int = 2_000,
        request_timeout_ms: int = 30_000,
        bootstrap_timeout_ms: int = 30_000,
        security: Mapping[str, Any] | None = None,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not group_id:
            raise ValueError("group_id is required")
        self._request_timeout_ms = request_timeout_ms
        # Lag is a metric: measuring it must never hold the loop for a whole request timeout.
        self._lag_timeout_ms = lag_timeout_ms
        static = _static_membership(group_instance_id)
        config = _client_config(
            bootstrap_servers,
            client_id,
            security,
            kafka_options,
            group_id=group_id,
            **static,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            max_poll_records=max_poll_records,
            max_poll_interval_ms=max_poll_interval_ms,
            fetch_max_wait_ms=fetch_max_wait_ms,
            request_timeout_ms=request_timeout_ms,
            bootstrap_timeout_ms=bootstrap_timeout_ms,
        )
        with _translated("creating the Kafka consumer"):
            self._consumer = KafkaConsumer(**config)
        self._callbacks: dict[str, RebalanceCallback | None] = {}
        self._callback_error: BaseException | None = None
        self._closing = False
        self._closed = False
        # kafka-python 3 has no public way to hand work back to its IO loop from another thread; the
        # helper-thread dispatch needs its loop's call_soon_threadsafe. Without it (a future
        # kafka-python), callbacks run inline on the IO thread, where blocking consumer calls fail.
        self._call_soon_threadsafe: Callable[[Callable[[], None]], Any] | None = getattr(
            getattr(self._consumer, "_net", None), "call_soon_threadsafe", None
        )
        if self._call_soon_threadsafe is None:  # pragma: no cover - depends on the kafka-python version
            log.warning("kafka-python has no IO-loop hook; rebalance callbacks cannot call the consumer")

    # The contract ------------------------------------------------------------------------------------

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        topics = checked_topics(topics)
        self._callbacks = rebalance_callbacks(on_assign, on_revoke, on_lost)
        with _translated("subscribing"):
            self._consumer.subscribe(topics=topics, listener=_Listener(self))

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        if not self._callbacks:
            raise RuntimeError("poll() before subscribe()")
        stale, self._callback_error = self._callback_error, None
        if stale is not None:  # raised by a callback but not passed on by kafka-python: report it now
            raise stale
        try:
            batch = self._consumer.poll(timeout_ms=max(0, int(timeout_s * 1000)), max_records=max_records)
        except Exception as exc:
            error, self._callback_error = self._callback_error, None
            if error is not None:
                raise error from None
            if isinstance(exc, kerr.KafkaError):
                raise _translate(exc, "polling") from exc
            raise
        return _messages(batch)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit exactly ``offsets``, each for a partition this member owns (``TransportError`` otherwise:
        the broker would accept it and overwrite the new owner's progress)."""
        if not offsets:
            return
        owned = self._consumer.assignment()
        explicit = {}
        for tp, offset in offsets.items():
            if not isinstance(offset, int) or offset < 0:
                raise ValueError(f"invalid offset {offset!r} for {tp}")
            ktp = KafkaTopicPartition(tp.topic, tp.partition)
            if ktp not in owned:
                raise TransportError(f"cannot commit {tp}: not assigned to this member (rebalanced?)")
            explicit[ktp] = OffsetAndMetadata(offset, "", -1)
        with _translated("committing offsets"):
            self._consumer.commit(explicit, timeout_ms=self._request_timeout_ms)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Raises ``ValueError`` for a partition not assigned to this member or a negative offset."""
        self._consumer.seek(KafkaTopicPartition(tp.topic, tp.partition), offset)

    def committed(self, tp: TopicPartition) -> int | None:
        with _translated("fetching the committed offset"):
            offset = self._consumer.committed(
                KafkaTopicPartition(tp.topic, tp.partition), timeout_ms=self._request_timeout_ms
            )
        return offset if offset is not None and offset >= 0 else None

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def lag(self) -> dict[TopicPartition, int]:
        """One ``ListOffsets`` request for all assigned partitions; no records are fetched.

        The end of a partition is the larger of ``ListOffsets(latest)`` and the high watermark of the last
        fetch response. On Apache Kafka the first is always the larger; Tansu 0.6 answers
        ``ListOffsets(latest)`` with the base offset of the partition's last record batch plus one, which
        under-counts when that batch holds several records, while its fetch high watermark is exact.
        Partitions whose position is not known yet (nothing fetched, no committed offset resolved) are
        left out.
        """
        assigned = list(self._consumer.assignment())
        if not assigned:
            return {}
        with _translated("measuring lag"):
            ends = self._consumer.end_offsets(assigned, timeout_ms=self._lag_timeout_ms)
            lag = {}
            for ktp in assigned:
                position = self._consumer.position(ktp, timeout_ms=self._lag_timeout_ms)
                if position is None:
                    continue
                end = max(ends.get(ktp) or 0, self._consumer.highwater(ktp) or 0)
                lag[TopicPartition(ktp.topic, ktp.partition)] = max(0, end - position)
        return lag

    def member_id(self) -> str | None:
        return self._consumer.group_metadata().member_id or None

    def close(self) -> None:
        """Leave the group (``on_revoke`` runs first, so it can still commit) and release the client."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        try:
            self._consumer.close(autocommit=False, timeout_ms=self._request_timeout_ms)
        except kerr.KafkaError as exc:
            log.warning("closing the Kafka consumer: %s: %s", type(exc).__name__, exc)
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise error

    # Rebalance callbacks ------------------------------------------------------------------------------

    async def _dispatch(self, kind: str, partitions: Iterable[KafkaTopicPartition]) -> None:
        callback = self._callbacks.get(kind)
        tps = {TopicPartition(tp.topic, tp.partition) for tp in partitions}
        if callback is None or (not tps and kind != "assign"):
            return
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                callback(tps)
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        schedule = self._call_soon_threadsafe
        if schedule is None:  # pragma: no cover - depends on the kafka-python version
            run()
        else:
            done = KafkaFuture()

            def run_then_wake() -> None:
                try:
                    run()
                finally:
                    schedule(lambda: done.success(None))

            threading.Thread(target=run_then_wake, name=f"activestream-on-{kind}", daemon=True).start()
            await done
        error = outcome[0] if outcome else RuntimeError(f"on_{kind} callback did not finish")
        if error is None:
            return
        self._callback_error = error
        if self._closing:
            return  # let kafka-python finish closing; close() re-raises it
        if isinstance(error, Exception):
            raise error
        raise RuntimeError(f"on_{kind} callback raised {type(error).__name__}") from error
