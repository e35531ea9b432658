"""The fast transport: confluent-kafka (librdkafka) behind the ``transport.base`` contract.

Optional (``pip install 'activestream[fast]'``, chosen with ``ACTIVESTREAM_TRANSPORT=confluent``): the
same contract and the same semantics as ``transport.kafka``, several times the consume rate
(benchmarks/results/kafka_raw_rate*.md). Constructor keywords match ``transport.kafka``'s where they mean
the same thing, so callers and tests swap one for the other; ``kafka_options`` here takes librdkafka
properties (``"fetch.wait.max.ms"``...) instead of kafka-python keywords.

Errors: librdkafka errors are translated (``transport.errors``): retriable or connectivity ones become
``BrokerUnavailable``, invalid configuration ``ValueError``, the others ``TransportError``;
``ConfluentProducerAdapter.flush`` raises ``DeliveryError``. Exceptions raised by the loop's own
rebalance callbacks propagate unchanged.

**Consumer** (``ConfluentConsumerAdapter``): a consumer-group member with ``enable.auto.commit=false``
and ``enable.auto.offset.store=false`` (librdkafka never commits on its own, not even on close), and
``auto.offset.reset=earliest``; ``commit`` sends exactly the offsets it is given, synchronously.

*Assignment is eager* (``partition.assignment.strategy=range``, kafka-python's default too): every
rebalance revokes the whole assignment and assigns a whole new one, so ``on_assign`` sees the complete
assignment and ``on_revoke`` everything the member held, exactly as with ``transport.kafka``. The
cooperative protocol would hand the callbacks increments instead, a different contract.

*Static membership*: ``group_instance_id`` becomes ``group.instance.id`` (KIP-345), with the same effect as
in ``transport.kafka``: a restarted member rejoins under its old identity without a rebalance, and
``close()`` does not leave the group. Empty or ``None``: dynamic membership.

*Rebalance callbacks* run on the owner's thread inside ``poll()`` (or ``close()``), where librdkafka
serves them, so they may call every method of the consumer. Mapping:

- ``on_assign``: after every completed rebalance, with the whole new assignment, possibly empty. It runs
  *before* the partitions are handed to librdkafka, so ``seek`` in it takes effect (librdkafka refuses a
  seek on a partition that is not fetching yet): the adapter assigns right after the callback, at the
  offsets it sought; the others start at the committed offset. ``assignment()`` includes them already.
- ``on_revoke``: before a rebalance takes partitions away, while the member can still commit; also from
  ``close()``. Only called with a non-empty set.
- ``on_lost``: librdkafka reports that the assignment was lost (session timed out, ``max.poll.interval``
  exceeded); committing is no longer possible. When ``on_lost`` is not given, ``on_revoke`` runs instead.

A callback's exception propagates out of ``poll()`` (after the partitions were assigned or revoked, so the
member carries on); messages fetched in the same ``poll()`` are not lost: their partitions are rewound
to the first of them. An error librdkafka reports in the message stream (other than a partition EOF) is
raised from ``poll()``, after the messages fetched with it were returned.

``poll(timeout_s, max_records)`` returns as soon as any message is there, like kafka-python, not after
``max_records`` arrived or the timeout passed (what librdkafka's ``consume`` alone does).

``lag`` uses the larger of the broker's high watermark and the one of the last fetch, like
``transport.kafka`` (Tansu's ``ListOffsets`` under-counts), within ``lag_timeout_ms`` in all.

*Fairness across partitions*: librdkafka prefetches every partition into one FIFO queue, so records that
arrive on one partition (labels) would wait behind everything prefetched from the others (a backlog of
events). The prefetch is bounded to ``QUEUED_MAX_KBYTES``, and ``FairShare`` pauses the other partitions
while one with undelivered records (by the high watermark of the last fetch) has waited for
``FAIR_SHARE`` of their messages, until it delivered. A pause makes librdkafka drop the paused
partitions' queued records; it fetches them again from the offset after the last one ``poll()`` returned,
so nothing is skipped or repeated. ``kafka_options`` can still override the prefetch properties.

**Producer** (``ConfluentProducerAdapter``): ``acks=all``, idempotence on, ``linger.ms`` 5,
``message.max.bytes`` from ``max_message_bytes``. A full local queue (``BufferError``) is drained by
serving delivery reports for up to ``max_block_ms``; then ``BrokerUnavailable``. Every record's outcome is
recorded by a delivery callback; ``flush`` raises ``DeliveryError`` listing the failures since the
previous ``flush``, or the records not acknowledged within the timeout.

**Admin** (``ConfluentAdminAdapter``): creates missing topics (``TOPIC_ALREADY_EXISTS`` from a concurrent
creation is fine) and answers ``is_reachable`` with a metadata request bounded by its timeout.

Consumer and producer ask the broker for metadata once when created, so a broker that is down at start
fails there (``BrokerUnavailable`` within ``bootstrap_timeout_ms``), as with kafka-python.

Security: ``security`` takes the kafka-python keywords ``Settings.kafka_security_kwargs()`` returns and
maps them to librdkafka properties (``librdkafka_security``). librdkafka's log lines go to the
``activestream.transport.confluent.librdkafka`` logger; librdkafka never prints secrets in them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

try:
    import confluent_kafka as ck
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka import TopicPartition as CkTopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as missing:  # pragma: no cover - tested through transport.factory
    raise ImportError(
        "the confluent transport needs confluent-kafka: pip install 'activestream[fast]'"
    ) from missing

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

__all__ = [
    "ConfluentAdminAdapter",
    "ConfluentConsumerAdapter",
    "ConfluentProducerAdapter",
    "librdkafka_security",
]

log = logging.getLogger(__name__)
#: librdkafka's own log lines (connection failures, retries, ...).
rdkafka_log = logging.getLogger(f"{__name__}.librdkafka")

#: kafka-python security keywords -> librdkafka properties.
_SECURITY_NAMES: Final = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
}

#: Errors that mean "the broker is not there (yet)": retrying later may succeed.
_UNAVAILABLE: Final = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError._WAIT_COORD,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    }
)

#: Reported in the message stream but not failures of the member: librdkafka carries on by itself.
_BENIGN: Final = frozenset(
    {
        KafkaError._PARTITION_EOF,
        # The member missed max.poll.interval and left the group: on_lost runs and it rejoins, as with
        # kafka-python, which reports nothing else.
        KafkaError._MAX_POLL_EXCEEDED,
        # A subscribed topic that does not exist (yet): kafka-python waits for it silently.
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)

_OFFSET_INVALID: Final = ck.OFFSET_INVALID


# -- helpers ----------------------------------------------------------------------------------------------


def librdkafka_security(security: Mapping[str, Any] | None) -> dict[str, str]:
    """kafka-python security keywords (``Settings.kafka_security_kwargs()``) as librdkafka properties.

    >>> librdkafka_security({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
    ...                      "sasl_plain_username": "alice", "ssl_cafile": "/etc/ca.pem"})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'security.protocol': 'SASL_SSL', 'sasl.mechanism': 'SCRAM-SHA-256', 'sasl.username': 'alice',
     'ssl.ca.location': '/etc/ca.pem'}
    >>> librdkafka_security({"ssl_crlfile": "x"})
    Traceback (most recent call last):
    ...
    ValueError: security option 'ssl_crlfile' has no librdkafka equivalent here; pass it in kafka_options
    """
    properties = {}
    for name, value in (security or {}).items():
        if name not in _SECURITY_NAMES:
            raise ValueError(
                f"security option {name!r} has no librdkafka equivalent here; pass it in kafka_options"
            )
        if value is not None:
            properties[_SECURITY_NAMES[name]] = str(value)
    return properties


def _error_of(exc: BaseException) -> KafkaError | None:
    arg = exc.args[0] if exc.args else None
    return arg if isinstance(arg, KafkaError) else None


def _translate_error(error: KafkaError, action: str) -> Exception:
    """Map a librdkafka error to the transport's exceptions (see ``transport.errors``).

    >>> _translate_error(KafkaError(KafkaError._ALL_BROKERS_DOWN), "polling")
    BrokerUnavailable('polling: _ALL_BROKERS_DOWN: Local: All broker connections are down')
    """
    detail = f"{action}: {error.name()}: {error.str()}"
    code = error.code()
    if code in (KafkaError._INVALID_ARG, KafkaError._INVALID_TYPE):
        return ValueError(detail)
    if code in _UNAVAILABLE or (error.retriable() and not error.fatal()):
        return BrokerUnavailable(detail)
    return TransportError(detail)


def _translate(exc: KafkaException, action: str) -> Exception:
    error = _error_of(exc)
    if error is None:
        return TransportError(f"{action}: {exc}")
    return _translate_error(error, action)


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except KafkaException as exc:
        raise _translate(exc, action) from exc


def _log_error(error: KafkaError) -> None:
    # Client-level errors (a broker down, authentication refused): librdkafka retries them by itself.
    rdkafka_log.warning("librdkafka error: %s: %s", error.name(), error.str())


def _client_config(
    bootstrap_servers: str | Sequence[str],
    client_id: str,
    security: Mapping[str, Any] | None,
    kafka_options: Mapping[str, Any] | None,
    **config: Any,
) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "bootstrap.servers": ",".join(bootstrap_list(bootstrap_servers)),
        "client.id": client_id,
        "logger": rdkafka_log,
        "error_cb": _log_error,
        **config,
    }
    merged.update(librdkafka_security(security))
    merged.update(kafka_options or {})
    return merged


def _bootstrap(client: Any, timeout_ms: int, action: str) -> None:
    """One metadata request: a broker that is down fails here, within ``timeout_ms``."""
    try:
        client.list_topics(timeout=max(0.001, timeout_ms / 1000))
    except KafkaException as exc:
        _serve_logs(client)
        raise _translate(exc, action) from exc


def _serve_logs(client: Any) -> None:
    """Hand librdkafka's queued log lines and errors to Python logging (they wait for a ``poll``)."""
    with contextlib.suppress(Exception):
        client.poll(0)


def _ck(tp: TopicPartition, offset: int = _OFFSET_INVALID) -> CkTopicPartition:
    return CkTopicPartition(tp.topic, tp.partition, offset)


def _ours(tp: CkTopicPartition) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)


#: ``Message``'s slot setters: building a message through them skips the frozen dataclass's ``__init__``
#: (one ``object.__setattr__`` per field), which cost more than librdkafka's whole fetch per message.
_NEW_MESSAGE = object.__new__
_SET_FIELDS = tuple(
    Message.__dict__[name].__set__
    for name in ("topic", "partition", "offset", "value", "key", "headers", "timestamp_ms")
)


def _message(m: Any) -> Message:
    """A librdkafka message as the contract's ``Message`` (equal to one built the ordinary way).

    >>> class Record:  # librdkafka's messages cannot be built here; a stand-in with the same methods
    ...     def topic(self): return "events"
    ...     def partition(self): return 0
    ...     def offset(self): return 41
    ...     def value(self): return b"{}"
    ...     def key(self): return b"k"
    ...     def headers(self): return [("trace", b"t"), ("empty", None)]
    ...     def timestamp(self): return (ck.TIMESTAMP_CREATE_TIME, 1700000000000)
    >>> headers = (("trace", b"t"), ("empty", b""))
    >>> _message(Record()) == Message("events", 0, 41, b"{}", b"k", headers, 1700000000000)
    True
    """
    kind, stamp = m.timestamp()
    headers = m.headers()
    message = _NEW_MESSAGE(Message)
    topic, partition, offset, value, key, hdrs, timestamp = _SET_FIELDS
    topic(message, m.topic())
    partition(message, m.partition())
    offset(message, m.offset())
    value(message, m.value())
    key(message, m.key())
    hdrs(message, tuple((k, b"" if v is None else v) for k, v in headers) if headers else ())
    timestamp(message, stamp if kind != ck.TIMESTAMP_NOT_AVAILABLE and stamp >= 0 else None)
    return message


#: librdkafka's prefetch queue bound (its default, 65536, holds hundreds of thousands of small events).
QUEUED_MAX_KBYTES: Final = 1024
#: A partition with unread records waits behind at most about this many messages of the others.
FAIR_SHARE: Final = 2_000
#: A pause ends after this long even if the starved partition delivered nothing (its high watermark
#: counted records it never delivers: transaction markers, compacted offsets).
_PAUSE_LIMIT_S: Final = 2.0


class FairShare:
    """Which partitions to pause so that no partition's records wait behind more than ``share`` messages
    of the others (pure bookkeeping; the consumer applies its answers with ``pause``/``resume``).

    librdkafka prefetches every partition into one FIFO queue (up to ``queued.max.messages.kbytes``), so a
    label produced during a backlog of events is served after everything fetched before it. A partition
    whose high watermark (as the last fetch saw it) is past the end of what it delivered has unread
    records; when ``share`` messages of other partitions were delivered meanwhile, it is *starved*: the
    others are paused (librdkafka drops their queued records and fetches them again, from the position
    after the last one delivered, on resume) until each starved partition delivered something.

    >>> fair = FairShare(share=1000)
    >>> events, labels = TopicPartition("events", 0), TopicPartition("labels", 0)
    >>> fair.observe({events: 500}, 500, {events: 90_000, labels: 0}, now=0.0)  # labels: nothing unread
    (set(), set())
    >>> fair.observe({events: 1000}, 500, {events: 90_000, labels: 3}, now=0.1)  # 3 labels behind
    (set(), set())
    >>> fair.observe({events: 1500}, 500, {events: 90_000, labels: 3}, now=0.2)
    (set(), set())
    >>> fair.observe({events: 2000}, 500, {events: 90_000, labels: 3}, now=0.3)  # waited 1500 > 1000
    ({TopicPartition(topic='events', partition=0)}, set())
    >>> fair.observe({labels: 3}, 3, {events: 90_000, labels: 3}, now=0.4)  # served: resume the others
    (set(), {TopicPartition(topic='events', partition=0)})
    """

    def __init__(self, share: int = FAIR_SHARE, pause_limit_s: float = _PAUSE_LIMIT_S) -> None:
        if share < 1:
            raise ValueError("share must be >= 1")
        self.share, self.pause_limit_s = share, pause_limit_s
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new assignment)."""
        #: Per partition: the offset after the last record delivered (or sought), else the first high
        #: watermark seen (records there at the assignment are fetched with the others, in fetch order).
        self.next: dict[TopicPartition, int] = {}
        #: Messages of other partitions delivered while this one had unread records.
        self.waited: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()
        self.starved: set[TopicPartition] = set()
        self.until = 0.0

    def sought(self, tp: TopicPartition, offset: int) -> None:
        """The owner moved ``tp``'s position: records from ``offset`` on are unread."""
        self.next[tp], self.waited[tp] = offset, 0

    def observe(
        self, ends: Mapping[TopicPartition, int], count: int, highs: Mapping[TopicPartition, int], now: float
    ) -> tuple[set[TopicPartition], set[TopicPartition]]:
        """One poll delivered ``count`` messages, ending at ``ends`` (the offset after each partition's
        last one); ``highs`` are the assigned partitions' high watermarks (negative: unknown yet).
        Returns the partitions to pause and the ones to resume."""
        for tp, high in highs.items():
            if tp in ends:
                self.next[tp], self.waited[tp] = ends[tp], 0
            elif tp not in self.next:
                if high >= 0:
                    self.next[tp], self.waited[tp] = high, 0
            elif high > self.next[tp] and tp not in self.paused:
                self.waited[tp] = self.waited.get(tp, 0) + count
            else:
                self.waited[tp] = 0
        if self.paused:
            self.starved -= ends.keys()
            if self.starved and now < self.until:
                return set(), set()
            for tp in self.starved:  # nothing came within the limit: nothing to deliver up to there
                self.next[tp] = max(self.next[tp], highs.get(tp, -1))
            resumed, self.paused, self.starved = self.paused, set(), set()
            self.waited.update(dict.fromkeys(resumed, 0))
            return set(), resumed & highs.keys()
        starved = {tp for tp, waited in self.waited.items() if waited > self.share and tp in highs}
        if not starved:
            return set(), set()
        self.starved, self.paused = starved, set(highs) - starved
        self.until = now + self.pause_limit_s
        return set(self.paused), set()


# -- consumer ---------------------------------------------------------------------------------------------


class ConfluentConsumerAdapter(FromSettings, Consumer):
    """A consumer-group member on librdkafka (see the module docstring for the behaviour)."""

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
        if max_poll_interval_ms < session_timeout_ms:
            # librdkafka refuses it; kafka-python accepts it, and then the poll deadline is what counts.
            log.warning(
                "max_poll_interval_ms %d raised to the session timeout (%d ms), as librdkafka requires",
                max_poll_interval_ms,
                session_timeout_ms,
            )
            max_poll_interval_ms = session_timeout_ms
        del max_poll_records  # accepted as transport.kafka does; poll()'s max_records decides here
        self._request_timeout_s = request_timeout_ms / 1000
        # Lag is a metric: measuring it must never hold the loop for a whole request timeout.
        self._lag_timeout_s = lag_timeout_ms / 1000
        config = _client_config(
            bootstrap_servers,
            client_id,
            security,
            kafka_options,
            **{
                "group.id": group_id,
                **({"group.instance.id": group_instance_id} if group_instance_id else {}),
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",
                "session.timeout.ms": session_timeout_ms,
                "heartbeat.interval.ms": heartbeat_interval_ms,
                "max.poll.interval.ms": max_poll_interval_ms,
                "fetch.wait.max.ms": fetch_max_wait_ms,
                "socket.timeout.ms": request_timeout_ms,
                # A few fetches' worth of prefetch instead of 64 MB, refilled without librdkafka's 1 s
                # back-off: what FairShare drops on a pause stays small, and a starved partition's new
                # records are fetched (and its high watermark seen) within a few thousand messages.
                "queued.max.messages.kbytes": QUEUED_MAX_KBYTES,
                "max.partition.fetch.bytes": QUEUED_MAX_KBYTES * 1024 // 4,
                "fetch.queue.backoff.ms": 20,
            },
        )
        with _translated("creating the Kafka consumer"):
            self._consumer = ck.Consumer(config)
        try:
            _bootstrap(self._consumer, bootstrap_timeout_ms, "connecting the Kafka consumer")
        except Exception:
            self._consumer.close()
            raise
        self._callbacks: dict[str, RebalanceCallback | None] = {}
        self._callback_error: BaseException | None = None
        self._pending_error: Exception | None = None
        # The assignment as the adapter handed it to librdkafka (eager: whole sets), so reading it never
        # waits on librdkafka: its assignment() blocks while a rebalance waits for this owner's callback.
        self._assigned: set[TopicPartition] = set()
        # During on_assign: the offsets sought for the partitions being assigned.
        self._sought: dict[TopicPartition, int] | None = None
        # Keeps a partition's new records from waiting behind the whole prefetched backlog of the others.
        self._fair = FairShare()
        self._fair_partitions: dict[TopicPartition, CkTopicPartition] = {}
        self._closed = False

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
            self._consumer.subscribe(
                topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        if not self._callbacks:
            raise RuntimeError("poll() before subscribe()")
        if self._pending_error is not None:  # reported with messages last time: raise it now
            error, self._pending_error = self._pending_error, None
            raise error
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        # librdkafka's consume(n, timeout) waits until n messages arrived or the timeout passed; the
        # contract returns as soon as there is anything. So: what is there; else wait for one, then the rest.
        raw = self._consume(max_records, 0)
        if not raw and timeout_s > 0:
            raw = self._consume(1, timeout_s)
            if raw and max_records > 1:
                raw += self._consume(max_records - 1, 0)
        messages, errors = [], []
        for m in raw:
            error = m.error()
            if error is None:
                messages.append(_message(m))
            elif error.code() in _BENIGN:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer: %s: %s", error.name(), error.str())
            else:
                errors.append(error)
        if len(self._fair_partitions) > 1:
            self._balance(messages)
        if self._callback_error is not None:
            error, self._callback_error = self._callback_error, None
            self._rewind(messages)
            raise error
        if errors:
            translated = _translate_error(errors[0], "polling")
            if not messages:
                raise translated
            self._pending_error = translated
        return messages

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit exactly ``offsets``, synchronously, each for a partition this member owns
        (``TransportError`` otherwise: the broker would accept it and overwrite the new owner's progress)."""
        if not offsets:
            return
        owned = self.assignment()
        explicit = []
        for tp, offset in offsets.items():
            if not isinstance(offset, int) or offset < 0:
                raise ValueError(f"invalid offset {offset!r} for {tp}")
            if tp not in owned:
                raise TransportError(f"cannot commit {tp}: not assigned to this member (rebalanced?)")
            explicit.append(_ck(tp, offset))
        with _translated("committing offsets"):
            result = self._consumer.commit(offsets=explicit, asynchronous=False)
        for entry in result or ():
            if entry.error is not None:
                raise _translate_error(entry.error, f"committing {_ours(entry)}")

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Raises ``ValueError`` for a partition not assigned to this member or a negative offset."""
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(f"invalid offset {offset!r} for {tp}")
        if tp not in self._assigned:
            raise ValueError(f"cannot seek {tp}: not assigned to this member")
        if self._sought is not None:
            self._sought[tp] = offset  # inside on_assign: applied when the adapter assigns, right after it
            return
        self._fair.sought(tp, offset)
        try:
            self._consumer.seek(_ck(tp, offset))
        except KafkaException as exc:
            error = _error_of(exc)
            if error is None or error.code() != KafkaError._STATE:
                raise _translate(exc, f"seeking {tp}") from exc
            # Assigned but not fetching yet: assign it again at the offset (a full assignment: eager).
            with _translated(f"seeking {tp}"):
                positions = {
                    _ours(p): p.offset for p in self._consumer.position([_ck(t) for t in self._assigned])
                }
                positions[tp] = offset
                self._consumer.assign([_ck(t, o) for t, o in sorted(positions.items())])

    def committed(self, tp: TopicPartition) -> int | None:
        with _translated("fetching the committed offset"):
            (entry,) = self._consumer.committed([_ck(tp)], timeout=self._request_timeout_s)
        if entry.error is not None:
            raise _translate_error(entry.error, f"fetching the committed offset of {tp}")
        return entry.offset if entry.offset >= 0 else None

    def assignment(self) -> set[TopicPartition]:
        """The partitions assigned (inside ``on_assign``: including the ones being assigned)."""
        return set(self._assigned)

    def lag(self) -> dict[TopicPartition, int]:
        """Messages between the position and the end of each assigned partition; no records are fetched.

        The end is the larger of the broker's high watermark and the one of the last fetch response
        (Tansu 0.6 answers ``ListOffsets(latest)`` with the base offset of the last record batch plus one).
        Partitions with no position yet (nothing consumed since the assignment) are left out. All the
        requests together take at most ``lag_timeout_ms``; past it, ``BrokerUnavailable``.
        """
        assigned = [_ck(tp) for tp in sorted(self._assigned)]
        if not assigned:
            return {}
        with _translated("measuring lag"):
            deadline = time.monotonic() + self._lag_timeout_s
            lag = {}
            for entry in self._consumer.position(assigned):
                if entry.offset < 0:
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BrokerUnavailable("measuring lag: timed out")
                _, high = self._consumer.get_watermark_offsets(entry, timeout=remaining, cached=False)
                _, fetched = self._consumer.get_watermark_offsets(entry, cached=True)
                end = max(high, fetched, 0)
                lag[_ours(entry)] = max(0, end - entry.offset)
        return lag

    def close(self) -> None:
        """Leave the group (``on_revoke`` runs first, so it can still commit) and release the client."""
        if self._closed:
            return
        self._closed = True
        try:
            self._consumer.close()
        except KafkaException as exc:
            log.warning("closing the Kafka consumer: %s", exc)
        except RuntimeError as exc:  # a callback's exception raised by confluent-kafka itself
            if self._callback_error is None:
                self._callback_error = exc
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise error

    # Internals ---------------------------------------------------------------------------------------

    def _consume(self, count: int, timeout_s: float) -> list[Any]:
        try:
            return self._consumer.consume(num_messages=count, timeout=timeout_s)
        except KafkaException as exc:
            raise _translate(exc, "polling") from exc

    def _balance(self, messages: list[Message]) -> None:
        """Pause the other partitions while one is starved, resume them once it was served (``FairShare``)."""
        last: dict[tuple[str, int], int] = {}
        for m in messages:
            last[m.topic, m.partition] = m.offset
        ends = {TopicPartition(t, p): offset + 1 for (t, p), offset in last.items()}
        highs = {}
        for tp, ck_tp in self._fair_partitions.items():
            try:
                highs[tp] = self._consumer.get_watermark_offsets(ck_tp, cached=True)[1]
            except KafkaException:
                highs[tp] = -1
        pause, resume = self._fair.observe(ends, len(messages), highs, time.monotonic())
        with _translated("pausing or resuming partitions for fairness"):
            if pause:
                log.debug("consumer: pausing %s while %s catch up", sorted(pause), sorted(self._fair.starved))
                self._consumer.pause([self._fair_partitions[tp] for tp in sorted(pause)])
            if resume:
                self._consumer.resume([self._fair_partitions[tp] for tp in sorted(resume)])

    def _rewind(self, messages: list[Message]) -> None:
        """Seek each partition back to the first of ``messages``: a raising poll loses nothing."""
        first: dict[TopicPartition, int] = {}
        for m in messages:
            first.setdefault(m.topic_partition, m.offset)
        for tp, offset in first.items():
            with contextlib.suppress(KafkaException, ValueError, TransportError):
                self.seek(tp, offset)

    def _run(self, kind: str, partitions: set[TopicPartition]) -> None:
        """Run the owner's callback; keep its exception for ``poll()`` (raising it inside librdkafka's
        callback would make confluent-kafka drop the messages of that ``consume``)."""
        callback = self._callbacks.get(kind)
        if callback is None or (not partitions and kind != "assign"):
            return
        try:
            callback(partitions)
        except BaseException as exc:
            if self._callback_error is None:
                self._callback_error = exc

    def _on_assign(self, consumer: Any, partitions: list[CkTopicPartition]) -> None:
        tps = {_ours(tp) for tp in partitions}
        self._assigned, self._sought = set(tps), {}
        self._fair.reset()
        self._fair_partitions = {tp: _ck(tp) for tp in sorted(tps)}
        try:
            self._run("assign", tps)
        finally:
            sought, self._sought = self._sought or {}, None
            for tp, offset in sought.items():
                self._fair.sought(tp, offset)
            try:
                consumer.assign([_ck(tp, sought.get(tp, _OFFSET_INVALID)) for tp in sorted(tps)])
            except KafkaException as exc:
                if self._callback_error is None:
                    self._callback_error = _translate(exc, "assigning partitions")

    def _on_revoke(self, consumer: Any, partitions: list[CkTopicPartition]) -> None:
        self._revoked("revoke", consumer, partitions)

    def _on_lost(self, consumer: Any, partitions: list[CkTopicPartition]) -> None:
        self._revoked("lost", consumer, partitions)

    def _revoked(self, kind: str, consumer: Any, partitions: list[CkTopicPartition]) -> None:
        try:
            self._run(kind, {_ours(tp) for tp in partitions})
        finally:
            self._assigned, self._fair_partitions = set(), {}
            paused = self._fair.paused
            self._fair.reset()
            with contextlib.suppress(KafkaException):
                if paused:  # librdkafka keeps a partition's pause across assignments
                    consumer.resume([_ck(tp) for tp in sorted(paused)])
                consumer.unassign()


# -- producer ---------------------------------------------------------------------------------------------


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
        config = _client_config(
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
        with _translated("creating the Kafka producer"):
            self._producer = ck.Producer(config)
        _bootstrap(self._producer, bootstrap_timeout_ms, "connecting the Kafka producer")
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
                error = _error_of(exc)
                if error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    raise DeliveryError([(topic, _translate(exc, f"producing to {topic!r}"))]) from exc
                raise _translate(exc, f"producing to {topic!r}") from exc

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
            self._failures.append((message.topic(), _translate_error(error, "delivering")))


# -- admin ------------------------------------------------------------------------------------------------


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
        config = _client_config(
            bootstrap_servers,
            client_id,
            security,
            kafka_options,
            **{"socket.timeout.ms": request_timeout_ms},
        )
        # Creating it never talks to the broker: it cannot fail because the broker is down.
        with _translated("creating the Kafka admin client"):
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
        with _translated("ensuring topics"):
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
                    error = _error_of(exc)
                    if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                        continue
                    raise _translate(exc, f"creating topic {topic!r}") from exc
            self._wait_for(missing)
        log.info("created topics %s (%d partitions)", missing, partitions)

    def _wait_for(self, topics: list[str]) -> None:
        """Until the metadata lists every topic with its partitions' leaders (as kafka.py waits)."""
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
        with _translated("listing topics"):
            existing = set(self._client().list_topics(timeout=self._request_timeout_s).topics)
        return [topic for topic in dict.fromkeys(topics) if topic not in existing]

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
            _serve_logs(admin)

    def close(self) -> None:
        self._admin = None  # librdkafka's AdminClient has no close(); dropping it releases it
