"""librdkafka's partitions and messages as the contract's ``TopicPartition`` and ``Message``, and back."""

from __future__ import annotations

from typing import Any, Final

import confluent_kafka as ck
from confluent_kafka import TopicPartition as CkTopicPartition

from activestream.transport.base import Message, TopicPartition

__all__ = ["OFFSET_INVALID", "ck_partition", "our_message", "our_partition"]

OFFSET_INVALID: Final = ck.OFFSET_INVALID


def ck_partition(tp: TopicPartition, offset: int = OFFSET_INVALID) -> CkTopicPartition:
    """The contract's partition as librdkafka's (at ``offset``; by default none)."""
    return CkTopicPartition(tp.topic, tp.partition, offset)


def our_partition(tp: CkTopicPartition) -> TopicPartition:
    """librdkafka's partition as the contract's (its offset dropped)."""
    return TopicPartition(tp.topic, tp.partition)


#: ``Message``'s slot setters: building a message through them skips the frozen dataclass's ``__init__``
#: (one ``object.__setattr__`` per field), which cost more than librdkafka's whole fetch per message.
_NEW_MESSAGE = object.__new__
_SET_FIELDS = tuple(
    Message.__dict__[name].__set__
    for name in ("topic", "partition", "offset", "value", "key", "headers", "timestamp_ms")
)


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
