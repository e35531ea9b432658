"""librdkafka's partitions and messages as the contract's ``TopicPartition`` and ``Message``, and back; a
consumed batch sorted into messages and the errors that are failures (``our_messages``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import confluent_kafka as ck
from confluent_kafka import KafkaError
from confluent_kafka import TopicPartition as CkTopicPartition

from activestream.transport.base import Message, TopicPartition
from activestream.transport.confluent.client import log

__all__ = ["BENIGN", "OFFSET_INVALID", "ck_partition", "our_message", "our_messages", "our_partition"]

OFFSET_INVALID: Final = ck.OFFSET_INVALID

#: Reported in the message stream but not failures of the client: librdkafka carries on by itself.
BENIGN: Final = frozenset(
    {
        KafkaError._PARTITION_EOF,
        # The member missed max.poll.interval and left the group: on_lost runs and it rejoins, as with
        # kafka-python, which reports nothing else.
        KafkaError._MAX_POLL_EXCEEDED,
        # A topic that does not exist (yet): kafka-python waits for it silently.
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


def ck_partition(tp: TopicPartition, offset: int = OFFSET_INVALID) -> CkTopicPartition:
    """The contract's partition as librdkafka's (at ``offset``; by default none)."""
    return CkTopicPartition(tp.topic, tp.partition, offset)


def our_partition(tp: CkTopicPartition) -> TopicPartition:
    """librdkafka's partition as the contract's (its offset dropped)."""
    return TopicPartition(tp.topic, tp.partition)


def our_message(m: Any) -> Message:
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
    >>> our_message(Record()) == Message("events", 0, 41, b"{}", b"k", headers, 1700000000000)
    True
    """
    kind, stamp = m.timestamp()
    headers = m.headers()
    # Positional arguments: this runs per record (``Message`` is not frozen for the same reason).
    return Message(
        m.topic(),
        m.partition(),
        m.offset(),
        m.value(),
        m.key(),
        tuple((k, b"" if v is None else v) for k, v in headers) if headers else (),
        stamp if kind != ck.TIMESTAMP_NOT_AVAILABLE and stamp >= 0 else None,
    )


def our_messages(raw: Iterable[Any], client: str = "consumer") -> tuple[list[Message], list[KafkaError]]:
    """A batch of ``consume`` as the contract's messages, in order, and the errors in it that are failures
    (``BENIGN`` ones are dropped: a partition EOF silently, the others with a warning naming ``client``)."""
    messages, errors = [], []
    for m in raw:
        error = m.error()
        if error is None:
            messages.append(our_message(m))
        elif error.code() in BENIGN:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("%s: %s: %s", client, error.name(), error.str())
        else:
            errors.append(error)
    return messages, errors
