"""The production transport: kafka-python 3 behind the ``transport.base`` contract.

Nothing here is specific to one broker: the same code runs against Apache Kafka and against the Tansu
broker the demo embeds. Where Tansu differs, the adapter uses a broker-neutral formulation that is
right on both (see ``KafkaConsumerAdapter.lag``).

Errors: kafka-python exceptions are translated (``transport.errors``): retriable ones (connection
refused, timeouts, no coordinator) become ``BrokerUnavailable``, the others ``TransportError``;
``KafkaProducerAdapter.flush`` raises ``DeliveryError``. Exceptions raised by the loop's own rebalance
callbacks propagate unchanged.

**Consumer** (``KafkaConsumerAdapter``): a ``KafkaConsumer`` in a consumer group with
``enable_auto_commit=False`` and ``auto_offset_reset="earliest"``; commits only the offsets it is given.

*Rebalance callbacks.* kafka-python 3 runs rebalance listeners on its IO thread, where a blocking
consumer call (``commit``, ``committed``...) raises ``RuntimeError``. The adapter therefore registers an
``AsyncConsumerRebalanceListener`` that runs each callback on a short-lived helper thread and waits for
it. The owner thread stays blocked in ``poll()`` (or ``close()``) for the whole callback, so callbacks
never run concurrently with the owner, may call every method of the consumer (an ``on_revoke`` that
commits is the intended use), and heartbeats keep flowing while they run. Mapping:

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

``commit`` refuses partitions this member does not own (``TransportError``; the broker would accept
them and overwrite the new owner's progress); ``seek`` raises ``ValueError`` for them. ``poll`` before
``subscribe`` raises ``RuntimeError``.

*Static membership* (``group_instance_id``, KIP-345; kafka-python 3 has it, the broker needs API ≥ 2.3): the
member keeps its identity across restarts, so a restarted process rejoins without a rebalance and gets its
partitions back at once, instead of waiting out the dead member's session; in exchange ``close()`` does not
leave the group (the partitions of a member that is gone for good move after ``session_timeout_ms``). Two
live consumers with the same id in one group fence each other. Empty or ``None``: dynamic membership.

*Joining takes time* (Kafka's ``group.initial.rebalance.delay.ms``, 3 s by default; on Tansu about half
the session timeout). kafka-python 3.0.12 discards a JoinGroup answer that arrives while the owner is
between two ``poll()`` calls and sends the JoinGroup again, so keep the time spent outside ``poll()``
short while the member has no assignment.

**Producer** (``KafkaProducerAdapter``): ``acks="all"``, idempotence on (Tansu accepts it; turn it
off with ``enable_idempotence=False`` for brokers that do not support it), unbounded retries within
``delivery_timeout_ms``, small ``linger_ms``, ``max_request_size`` from ``max_message_bytes``. Every
send's outcome is tracked by a callback; ``flush`` raises ``DeliveryError`` listing the failures since
the previous ``flush`` (first one in the message), or the records not acknowledged within the timeout.

**Admin** (``KafkaAdminAdapter``): creates missing topics (replication factor configurable, default 1,
tolerant to a concurrent creation) and answers ``is_reachable`` with a metadata request that never
blocks the caller longer than its timeout. The admin client is created lazily, so constructing the
adapter never fails when the broker is down.

All three take explicit keyword arguments and a ``from_settings(settings, **overrides)`` classmethod
(``transport.options.FromSettings``, shared with the confluent adapters) that reads the service's
``Settings`` (duck-typed: ``bootstrap_servers``, ``group_id``, ``session_timeout_ms``,
``heartbeat_interval_ms``, ``max_poll_records``, ``max_message_bytes``, ``kafka_security_kwargs()``,
optional ``group_instance_id`` and ``client_id``). ``security`` takes the kafka-python SASL/SSL
keyword arguments; ``kafka_options`` passes any other kafka-python setting through unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import kafka.errors as kerr
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import MemberToRemove
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.future import Future as KafkaFuture
from kafka.structs import OffsetAndMetadata

from activestream.transport.base import (
    Admin,
    Consumer,
    Message,
    Producer,
    RebalanceCallback,
    TopicPartition,
)
from activestream.transport.errors import BrokerUnavailable, DeliveryError, TransportError
from activestream.transport.options import (
    ADMIN_OPTIONAL_SETTINGS,
    CONSUMER_OPTIONAL_SETTINGS,
    CONSUMER_SETTINGS,
    DEFAULT_CLIENT_ID,
    PRODUCER_SETTINGS,
    FromSettings,
    bootstrap_list,
    checked_topics,
    rebalance_callbacks,
)

__all__ = ["KafkaAdminAdapter", "KafkaConsumerAdapter", "KafkaProducerAdapter"]

log = logging.getLogger(__name__)


# -- helpers ----------------------------------------------------------------------------------------------


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


# -- consumer ---------------------------------------------------------------------------------------------

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
        messages = []
        for records in batch.values():
            for r in records:
                messages.append(
                    Message(
                        topic=r.topic,
                        partition=r.partition,
                        offset=r.offset,
                        value=r.value,
                        key=r.key,
                        headers=tuple((k, v if v is not None else b"") for k, v in r.headers or ()),
                        timestamp_ms=r.timestamp if r.timestamp is not None and r.timestamp >= 0 else None,
                    )
                )
        return messages

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


# -- producer ---------------------------------------------------------------------------------------------


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


# -- admin ------------------------------------------------------------------------------------------------


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
