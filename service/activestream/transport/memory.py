"""An in-process broker that follows the transport contract, for unit tests of the service loop.

``MemoryBroker`` holds topics (N partitions each), consumer groups (committed offsets, members) and
hands out ``consumer(group_id)``, ``producer()``, ``admin()`` and ``reader()`` objects that implement
``transport.base``. Everything is deterministic and single-threaded: ``poll`` never blocks, record
timestamps come from a logical clock (pass ``clock_ms`` for another), partitions are assigned by a fixed
rule and callbacks run in a fixed order.

Behaviour, matching ``transport.kafka`` where the contract leaves room:

- Partitioning: a record with a key goes to ``murmur2(key) % partitions`` (Kafka's default partitioner,
  so a key lands on the same partition as on a real cluster); records without a key are spread
  round-robin per producer. Producing to an unknown topic creates it with ``default_partitions``.
- Producing: records are buffered and become visible to consumers (and to ``messages``) at ``flush``
  (or ``close``), so a loop that forgets to flush sees its output missing. ``producer(fail_flush=True)``
  (or setting ``producer.fail_flush`` later) makes ``flush`` drop the buffered records and raise
  ``DeliveryError``. A record larger than ``max_message_bytes`` raises ``DeliveryError`` from
  ``produce``.
- Groups: eager rebalancing with range assignment over the members in join order. ``subscribe`` joins;
  the rebalance happens in ``poll``: a member first gets ``on_revoke`` for what it holds, and no member
  gets ``on_assign`` (called with the whole new assignment, possibly empty) before every member has
  revoked, as in Kafka. ``close`` calls ``on_revoke`` (it can still commit) and leaves the group.
  ``force_rebalance(group_id, lost=True)`` makes every member's next ``poll`` call ``on_lost`` instead
  (``on_revoke`` when no ``on_lost`` was given); lost partitions can no longer be committed.
- A member that stops polling without ``close`` (a crash) keeps its partitions for good: the others wait,
  as for a dead Kafka member until its session expires. ``admin().remove_members`` takes such a member
  out by its ``member_id()`` (``None`` when removed, ``"UnknownMemberIdError"`` for an id not in the
  group); if it polls again it gets ``on_lost`` and joins again under a new id.
- A new member starts each partition at the group's committed offset, else at the beginning.
- ``commit`` accepts only partitions the member owns (``TransportError`` otherwise). ``seek`` raises
  ``ValueError`` for a partition not assigned or a negative offset. ``poll`` before ``subscribe`` raises
  ``RuntimeError``; ``poll``, ``commit`` and ``produce`` on a closed client raise ``TransportError``.
- An exception raised by a callback propagates out of ``poll``/``close``; a failed ``on_revoke`` runs
  again at the next ``poll``.
- ``admin(reachable=False)`` answers ``is_reachable`` with ``False`` and its ``ensure_topics`` raises
  ``BrokerUnavailable``.

>>> broker = MemoryBroker()
>>> broker.admin().ensure_topics(["events"], partitions=2)
>>> producer = broker.producer()
>>> for i in range(4):
...     producer.produce("events", b"v%d" % i, key=b"user-%d" % (i % 2), headers=[("trace", b"t%d" % i)])
>>> producer.flush(1.0)
>>> consumer = broker.consumer("scorer")
>>> consumer.subscribe(["events"], on_assign=lambda tps: print("assigned", sorted(p for _, p in tps)))
>>> batch = consumer.poll(1.0, max_records=10)
assigned [0, 1]
>>> [(m.partition, m.offset, m.value) for m in batch]
[(0, 0, b'v1'), (0, 1, b'v3'), (1, 0, b'v0'), (1, 1, b'v2')]
>>> consumer.commit({TopicPartition("events", 1): 1})
>>> consumer.committed(TopicPartition("events", 1)), consumer.lag()[TopicPartition("events", 1)]
(1, 0)
>>> consumer.close()
>>> again = broker.consumer("scorer")
>>> again.subscribe(["events"])
>>> [(m.partition, m.offset) for m in again.poll(1.0, max_records=10)]
[(0, 0), (0, 1), (1, 1)]
>>> [m.value for m in broker.messages("events")]
[b'v0', b'v1', b'v2', b'v3']
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from activestream.transport.base import (
    Admin,
    Consumer,
    Message,
    Producer,
    Reader,
    RebalanceCallback,
    TopicPartition,
)
from activestream.transport.errors import BrokerUnavailable, DeliveryError, TransportError

__all__ = ["MemoryAdmin", "MemoryBroker", "MemoryConsumer", "MemoryProducer", "MemoryReader", "murmur2"]

log = logging.getLogger(__name__)

#: The logical clock's first timestamp (2023-11-14T22:13:20Z); it advances 1 ms per record.
LOGICAL_CLOCK_START_MS = 1_700_000_000_000


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), as an unsigned 32-bit int.

    >>> murmur2(b"21") - (1 << 32)  # the Java client's test vector, as a signed int
    -973932308
    """
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = length % 4
    base = length - tail
    if tail >= 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def _partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class _Group:
    members: list[MemoryConsumer] = field(default_factory=list)
    generation: int = 0
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    lost: bool = False  # the current rebalance takes partitions away without a chance to commit

    def target(self, broker: MemoryBroker) -> dict[MemoryConsumer, set[TopicPartition]]:
        """Range assignment per topic over the members subscribed to it, in join order."""
        result: dict[MemoryConsumer, set[TopicPartition]] = {m: set() for m in self.members}
        topics = sorted({t for m in self.members for t in m._topics if t in broker._logs})
        for topic in topics:
            subscribers = [m for m in self.members if topic in m._topics]
            count = len(broker._logs[topic])
            per, extra = divmod(count, len(subscribers))
            start = 0
            for i, member in enumerate(subscribers):
                n = per + (1 if i < extra else 0)
                result[member].update(TopicPartition(topic, p) for p in range(start, start + n))
                start += n
        return result


class MemoryBroker:
    """Topics, consumer groups and the clients that use them, all in this process."""

    def __init__(
        self,
        default_partitions: int = 1,
        max_message_bytes: int = 1_048_576,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        if default_partitions < 1:
            raise ValueError("default_partitions must be >= 1")
        self.default_partitions = default_partitions
        self.max_message_bytes = max_message_bytes
        self._logs: dict[str, list[list[Message]]] = {}
        self._produced: dict[str, list[Message]] = {}
        self._groups: dict[str, _Group] = {}
        self._member_ids = itertools.count(1)
        ticks = itertools.count(LOGICAL_CLOCK_START_MS)
        self._clock_ms = clock_ms or (lambda: next(ticks))

    # Clients -----------------------------------------------------------------------------------------

    def consumer(self, group_id: str) -> MemoryConsumer:
        if not group_id:
            raise ValueError("group_id is required")
        return MemoryConsumer(self, group_id)

    def producer(self, *, fail_flush: bool = False) -> MemoryProducer:
        return MemoryProducer(self, fail_flush=fail_flush)

    def admin(self, *, reachable: bool = True) -> MemoryAdmin:
        return MemoryAdmin(self, reachable=reachable)

    def reader(self) -> MemoryReader:
        return MemoryReader(self)

    # Inspection and fault injection -------------------------------------------------------------------

    def messages(self, topic: str) -> list[Message]:
        """Every record delivered to ``topic``, in the order it was delivered."""
        return list(self._produced.get(topic, ()))

    def partitions(self, topic: str) -> int:
        """The number of partitions of ``topic`` (``KeyError`` when it does not exist)."""
        return len(self._logs[topic])

    def end_offset(self, tp: TopicPartition) -> int:
        return len(self._logs[tp.topic][tp.partition])

    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """The group's committed offsets."""
        group = self._groups.get(group_id)
        return dict(group.committed) if group else {}

    def force_rebalance(self, group_id: str, *, lost: bool = False) -> None:
        """Start a rebalance of ``group_id``, as when a member joins or leaves.

        With ``lost=True`` members get ``on_lost`` (as when their session expired) instead of
        ``on_revoke`` and can no longer commit what they held.
        """
        group = self._groups.get(group_id)
        if group is None or not group.members:
            raise ValueError(f"group {group_id!r} has no members")
        self._bump(group, lost=lost)

    # Internals ---------------------------------------------------------------------------------------

    def _create_topic(self, topic: str, partitions: int) -> bool:
        if topic in self._logs:
            return False
        if not topic or not isinstance(topic, str):
            raise ValueError(f"invalid topic name {topic!r}")
        self._logs[topic] = [[] for _ in range(partitions)]
        self._produced[topic] = []
        for group in self._groups.values():
            if any(topic in m._topics for m in group.members):
                self._bump(group)
        return True

    def _group(self, group_id: str) -> _Group:
        return self._groups.setdefault(group_id, _Group())

    def _bump(self, group: _Group, lost: bool = False) -> None:
        group.generation += 1
        group.lost = lost

    def _append(self, topic: str, partition: int | None, record: _Pending) -> Message:
        self._create_topic(topic, self.default_partitions)
        log_ = self._logs[topic]
        if partition is None:
            partition = _partition_for(record.key, len(log_)) if record.key is not None else 0
        partition %= len(log_)
        message = Message(
            topic=topic,
            partition=partition,
            offset=len(log_[partition]),
            value=record.value,
            key=record.key,
            headers=record.headers,
            timestamp_ms=self._clock_ms(),
        )
        log_[partition].append(message)
        self._produced[topic].append(message)
        return message


class MemoryConsumer(Consumer):
    """A member of a ``MemoryBroker`` consumer group (see the module docstring)."""

    def __init__(self, broker: MemoryBroker, group_id: str) -> None:
        self._broker = broker
        self.group_id = group_id
        self._topics: frozenset[str] = frozenset()
        self._on_assign: RebalanceCallback | None = None
        self._on_revoke: RebalanceCallback | None = None
        self._on_lost: RebalanceCallback | None = None
        self._generation = -1  # the group generation this member's assignment belongs to
        self._assignment: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._cursor = 0  # rotates the partition polled first, so no partition starves
        self._member_id: str | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryConsumer(group_id={self.group_id!r}, assignment={sorted(self._assignment)})"

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        self._check_open()
        if isinstance(topics, str):
            raise TypeError("topics must be a sequence of topic names, not a string")
        self._topics = frozenset(topics)
        self._on_assign, self._on_revoke, self._on_lost = on_assign, on_revoke, on_lost or on_revoke
        self._join()

    def _join(self) -> None:
        group = self._broker._group(self.group_id)
        if self not in group.members:
            group.members.append(self)
            self._member_id = f"{self.group_id}-member-{next(self._broker._member_ids)}"
        self._broker._bump(group)

    def member_id(self) -> str | None:
        return self._member_id

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        """Returns at once (never waits for ``timeout_s``)."""
        self._check_open()
        if max_records <= 0:
            raise ValueError("max_records must be positive")
        if not self._topics:
            raise RuntimeError("poll() before subscribe()")
        if not self._rebalance():
            return []
        owned = sorted(self._assignment)
        if not owned:
            return []
        start = self._cursor % len(owned)
        self._cursor += 1
        batch: list[Message] = []
        for tp in owned[start:] + owned[:start]:
            log_ = self._broker._logs[tp.topic][tp.partition]
            position = self._positions[tp]
            taken = log_[position : position + max_records - len(batch)]
            batch.extend(taken)
            self._positions[tp] = position + len(taken)
            if len(batch) >= max_records:
                break
        return batch

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._check_open()
        for tp, offset in offsets.items():
            if not isinstance(offset, int) or offset < 0:
                raise ValueError(f"invalid offset {offset!r} for {tp}")
            if tp not in self._assignment or self._broker._groups[self.group_id].lost:
                raise TransportError(f"cannot commit {tp}: not assigned to this member (rebalanced?)")
        self._broker._groups[self.group_id].committed.update(
            {TopicPartition(tp.topic, tp.partition): offset for tp, offset in offsets.items()}
        )

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if not isinstance(offset, int) or offset < 0:
            raise ValueError("offset must be an int >= 0")
        if tp not in self._assignment:
            raise ValueError(f"unassigned partition {tp}")
        self._positions[tp] = offset

    def committed(self, tp: TopicPartition) -> int | None:
        group = self._broker._groups.get(self.group_id)
        return group.committed.get(tp) if group else None

    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    def lag(self) -> dict[TopicPartition, int]:
        return {
            tp: max(0, self._broker.end_offset(tp) - self._positions[tp])
            for tp in self._assignment
            if tp in self._positions
        }

    def close(self) -> None:
        """Revoke (``on_revoke`` may still commit) and leave the group."""
        if self._closed:
            return
        group = self._broker._groups.get(self.group_id)
        error: BaseException | None = None
        if self._assignment and group is not None:
            callback = self._on_lost if group.lost and self._generation != group.generation else None
            try:
                self._call(callback or self._on_revoke, self._assignment)
            except BaseException as exc:
                error = exc
        self._closed = True
        self._assignment, self._positions = set(), {}
        if group is not None and self in group.members:
            group.members.remove(self)
            if group.members:
                self._broker._bump(group)
        if error is not None:
            raise error

    # Internals ---------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("consumer is closed")

    @staticmethod
    def _call(callback: RebalanceCallback | None, partitions: set[TopicPartition]) -> None:
        if callback is not None:
            callback(set(partitions))

    def _rebalance(self) -> bool:
        """Bring this member up to the group's generation; False while waiting for other members."""
        group = self._broker._groups[self.group_id]
        if self not in group.members:  # removed by an admin: what it held is lost; it joins again
            if self._assignment:
                self._call(self._on_lost, self._assignment)
                self._assignment, self._positions = set(), {}
            self._join()
        if self._generation == group.generation:
            return True
        if self._assignment:
            self._call(self._on_lost if group.lost else self._on_revoke, self._assignment)
            self._assignment, self._positions = set(), {}
        if any(m._assignment and m._generation != group.generation for m in group.members if m is not self):
            return False  # someone still holds partitions from the previous generation
        target = group.target(self._broker)
        self._generation = group.generation
        group.lost = False
        self._assignment = set(target[self])
        self._positions = {tp: group.committed.get(tp, 0) for tp in self._assignment}
        self._call(self._on_assign, self._assignment)
        return True


@dataclass(frozen=True, slots=True)
class _Pending:
    value: bytes
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class MemoryProducer(Producer):
    """Buffers records until ``flush`` (see the module docstring)."""

    def __init__(self, broker: MemoryBroker, *, fail_flush: bool = False) -> None:
        self._broker = broker
        self.fail_flush = fail_flush
        self._pending: list[tuple[str, _Pending]] = []
        self._round_robin: dict[str, int] = {}
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
        if not isinstance(value, bytes | bytearray) or not isinstance(key, bytes | bytearray | None):
            raise TypeError("value must be bytes and key bytes or None")
        record = _Pending(bytes(value), None if key is None else bytes(key), tuple(headers))
        if not all(isinstance(k, str) and isinstance(v, bytes) for k, v in record.headers):
            raise TypeError("headers must be (str, bytes) pairs")
        size = len(record.value) + len(record.key or b"") + sum(len(k) + len(v) for k, v in record.headers)
        if size > self._broker.max_message_bytes:
            raise DeliveryError(
                [(topic, ValueError(f"record of {size} bytes exceeds {self._broker.max_message_bytes}"))]
            )
        self._pending.append((topic, record))

    def flush(self, timeout_s: float) -> None:
        pending, self._pending = self._pending, []
        if self.fail_flush and pending:
            raise DeliveryError(
                [(topic, TransportError("injected delivery failure")) for topic, _ in pending]
            )
        for topic, record in pending:
            partition = None
            if record.key is None:
                partition = self._round_robin.get(topic, 0)
                self._round_robin[topic] = partition + 1
            self._broker._append(topic, partition, record)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush(0.0)
        except DeliveryError as exc:
            log.error("producer closed with undelivered records: %s", exc)
        self._closed = True


class MemoryReader(Reader):
    """Reads one partition from an offset, in no group; a topic that does not exist yet reads as empty.

    >>> broker = MemoryBroker()
    >>> producer = broker.producer()
    >>> for i in range(3):
    ...     producer.produce("log", b"r%d" % i)
    >>> producer.flush(1.0)
    >>> reader = broker.reader()
    >>> reader.assign(TopicPartition("log", 0), 1)
    >>> [(m.offset, m.value) for m in reader.poll(0.0, max_records=10)], reader.poll(0.0, max_records=10)
    ([(1, b'r1'), (2, b'r2')], [])
    """

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self._tp: TopicPartition | None = None
        self._position = 0
        self._closed = False

    def assign(self, tp: TopicPartition, offset: int) -> None:
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        self._tp, self._position = tp, offset

    def poll(self, timeout_s: float, max_records: int) -> list[Message]:
        """Returns at once (never waits for ``timeout_s``)."""
        if self._closed:
            raise TransportError("reader is closed")
        if self._tp is None:
            raise RuntimeError("poll() before assign()")
        logs = self._broker._logs.get(self._tp.topic)
        if logs is None or self._tp.partition >= len(logs):
            return []
        taken = logs[self._tp.partition][self._position : self._position + max_records]
        self._position += len(taken)
        return taken

    def end_offset(self, tp: TopicPartition) -> int:
        logs = self._broker._logs.get(tp.topic)
        return len(logs[tp.partition]) if logs is not None and tp.partition < len(logs) else 0

    def close(self) -> None:
        self._closed = True


class MemoryAdmin(Admin):
    """Creates topics on the ``MemoryBroker``; ``reachable`` can be switched off to simulate an outage."""

    def __init__(self, broker: MemoryBroker, *, reachable: bool = True) -> None:
        self._broker = broker
        self.reachable = reachable

    def ensure_topics(self, topics: Sequence[str], partitions: int = 1) -> None:
        if isinstance(topics, str):
            raise TypeError("topics must be a sequence of topic names, not a string")
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        if not self.reachable:
            raise BrokerUnavailable("memory broker marked unreachable")
        for topic in topics:
            self._broker._create_topic(topic, partitions)

    def missing_topics(self, topics: Sequence[str]) -> list[str]:
        if not self.reachable:
            raise BrokerUnavailable("memory broker marked unreachable")
        return [topic for topic in dict.fromkeys(topics) if topic not in self._broker._logs]

    def is_reachable(self, timeout_s: float) -> bool:
        return self.reachable

    def partition_count(self, topic: str) -> int | None:
        if not self.reachable:
            raise BrokerUnavailable("memory broker marked unreachable")
        logs = self._broker._logs.get(topic)
        return None if logs is None else len(logs)

    def remove_members(self, group_id: str, member_ids: Sequence[str]) -> dict[str, str | None]:
        if not self.reachable:
            raise BrokerUnavailable("memory broker marked unreachable")
        group = self._broker._groups.get(group_id)
        members = {m.member_id(): m for m in group.members} if group else {}
        answers: dict[str, str | None] = {}
        for member_id in member_ids:
            member = members.pop(member_id, None)
            if member is None or group is None:
                answers[member_id] = "UnknownMemberIdError"
                continue
            group.members.remove(member)
            self._broker._bump(group)
            answers[member_id] = None
        return answers

    def close(self) -> None:
        pass
