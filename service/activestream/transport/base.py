"""The transport contract the service loop is written against.

Three implementations follow it: ``transport.kafka`` (kafka-python, the default), ``transport.confluent``
(confluent-kafka/librdkafka, the optional fast one; ``ACTIVESTREAM_TRANSPORT=confluent``) and
``transport.memory`` (in-process, for unit tests of the loop). ``transport.factory`` picks one from the
settings; the loop never imports a Kafka client directly.

Offsets follow Kafka's convention: a committed offset is the offset of the *next* message to read, so
after processing the message at offset ``o`` the loop commits ``o + 1``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple


class TopicPartition(NamedTuple):
    topic: str
    partition: int


# Not frozen: one is made per record consumed, and a frozen __init__ costs 4-5x (treat as immutable).
@dataclass(slots=True)
class Message:
    """One consumed record."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = field(default_factory=tuple)
    timestamp_ms: int | None = None

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


def partitions_of(messages: Iterable[Message]) -> set[TopicPartition]:
    """The partitions of ``messages`` (one ``TopicPartition`` built per partition, not per message).

    >>> sorted(partitions_of([Message("a", 0, 5, b""), Message("a", 0, 6, b""), Message("b", 1, 0, b"")]))
    [TopicPartition(topic='a', partition=0), TopicPartition(topic='b', partition=1)]
    """
    pairs = {(m.topic, m.partition) for m in messages}
    return {TopicPartition(topic, partition) for topic, partition in pairs}


#: Called with the partitions gained (on assign) or about to be lost (on revoke).
RebalanceCallback = Callable[[set[TopicPartition]], None]


class Consumer(abc.ABC):
    """A consumer-group member. Not thread-safe: one thread owns it.

    - ``subscribe`` joins the group; ``on_assign``/``on_revoke`` run inside ``poll`` during a rebalance
      (``on_revoke`` before partitions go away, so the owner can checkpoint and commit; ``on_lost`` when
      they were taken away already and committing is no longer possible).
    - ``poll`` returns at most ``max_records`` messages, possibly none.
    - ``commit`` commits exactly the given offsets (never "everything polled").
    - ``seek`` makes the next ``poll`` of that partition start at ``offset``.
    """

    @abc.abstractmethod
    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None: ...

    @abc.abstractmethod
    def poll(self, timeout_s: float, max_records: int) -> list[Message]: ...

    @abc.abstractmethod
    def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...

    @abc.abstractmethod
    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    @abc.abstractmethod
    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset for ``tp``, or ``None`` when nothing was committed."""

    @abc.abstractmethod
    def assignment(self) -> set[TopicPartition]: ...

    @abc.abstractmethod
    def lag(self) -> dict[TopicPartition, int]:
        """Messages between the consumer's position and the end of each assigned partition."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def member_id(self) -> str | None:
        """This member's id as the group coordinator gave it; ``None`` before it joined (or where the
        transport has none). Recorded so that a successor can remove it (``activestream.takeover``)."""
        return None


class Reader(abc.ABC):
    """Reads one partition from a given offset, outside any consumer group: no join, no commit. Not
    thread-safe: one thread owns it.

    - ``assign`` makes the next ``poll`` start at ``offset`` of ``tp`` (calling it again moves there).
    - ``poll`` returns at most ``max_records`` messages of that partition in offset order, possibly none;
      it waits at most ``timeout_s`` for the first one.
    - ``end_offset`` says where a partition ends now, without reading it.
    """

    @abc.abstractmethod
    def assign(self, tp: TopicPartition, offset: int) -> None: ...

    @abc.abstractmethod
    def poll(self, timeout_s: float, max_records: int) -> list[Message]: ...

    @abc.abstractmethod
    def end_offset(self, tp: TopicPartition) -> int:
        """The offset after the last record of ``tp`` now (0: empty or no such topic). Tansu 0.6 counts
        only up to the first record of the partition's last record batch: write a record that marks an
        end in a batch of its own (flushed alone)."""

    @abc.abstractmethod
    def close(self) -> None: ...


class Producer(abc.ABC):
    """Sends records. ``flush`` blocks until every record sent so far is acknowledged, or raises."""

    @abc.abstractmethod
    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Iterable[tuple[str, bytes]] = (),
    ) -> None: ...

    @abc.abstractmethod
    def flush(self, timeout_s: float) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...


class Admin(abc.ABC):
    """Topic management and broker reachability, for start-up and ``/readyz``."""

    @abc.abstractmethod
    def ensure_topics(self, topics: Sequence[str], partitions: int = 1) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are."""

    @abc.abstractmethod
    def missing_topics(self, topics: Sequence[str]) -> list[str]:
        """The topics of ``topics`` that do not exist (in order), for a start that must not create them."""

    @abc.abstractmethod
    def is_reachable(self, timeout_s: float) -> bool: ...

    def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has; ``None`` when it does not exist or the transport cannot say."""
        return None

    def remove_members(self, group_id: str, member_ids: Sequence[str]) -> dict[str, str | None]:
        """Remove dynamic members from ``group_id`` as if each had left (a ``LeaveGroup`` on its behalf).

        Per member id: ``None`` when it was removed, else why not (the broker's error name, e.g.
        ``UnknownMemberIdError`` for a member that had left). A transport that cannot remove members
        answers ``"unsupported"`` for each.
        """
        return dict.fromkeys(member_ids, "unsupported")

    @abc.abstractmethod
    def close(self) -> None: ...
