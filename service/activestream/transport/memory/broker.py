"""The memory broker's state: topics as lists of partitions, consumer groups, the partitioner, the clock.

The clients (``memory.clients``) read and change this state; the package docstring states the contract.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from activestream.transport.base import Message, TopicPartition
from activestream.transport.memory.clients import (
    BufferedRecord,
    MemoryAdmin,
    MemoryConsumer,
    MemoryProducer,
    MemoryReader,
)

__all__ = ["LOGICAL_CLOCK_START_MS", "MemoryBroker", "murmur2"]

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

    def _append(self, topic: str, partition: int | None, record: BufferedRecord) -> Message:
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
