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

**Reader** (``ConfluentReaderAdapter``): one partition from an offset, outside any consumer group:
``assign`` with the offset, under a fixed ``group.id`` librdkafka requires (``READER_GROUP_ID``), never
joined and never committed to; ``poll`` as the consumer's (see its module, ``reader``).

**Admin** (``ConfluentAdminAdapter``): creates missing topics (``TOPIC_ALREADY_EXISTS`` from a concurrent
creation is fine) and answers ``is_reachable`` with a metadata request bounded by its timeout.

Consumer, reader and producer ask the broker for metadata once when created, so a broker that is down at
start fails there (``BrokerUnavailable`` within ``bootstrap_timeout_ms``), as with kafka-python.

Security: ``security`` takes the kafka-python keywords ``Settings.kafka_security_kwargs()`` returns and
maps them to librdkafka properties (``librdkafka_security``). librdkafka's log lines go to the
``activestream.transport.confluent.librdkafka`` logger; librdkafka never prints secrets in them.

The modules: ``consumer``, ``producer``, ``admin``, ``reader`` (the adapters), ``fairness``
(``FairShare``), ``client`` (configuration, security mapping, logs, ``consume``), ``errors`` (librdkafka's
errors translated) and ``records`` (partitions and messages converted). This package gathers the names
importers use.
"""

from __future__ import annotations

# First, before any module of the package: without the [fast] extra, the one error names it.
try:
    import confluent_kafka as ck
    from confluent_kafka import KafkaError, KafkaException
except ImportError as missing:  # pragma: no cover - tested through transport.factory
    raise ImportError(
        "the confluent transport needs confluent-kafka: pip install 'activestream[fast]'"
    ) from missing

from activestream.transport.confluent.admin import ConfluentAdminAdapter
from activestream.transport.confluent.client import librdkafka_security, rdkafka_log
from activestream.transport.confluent.consumer import ConfluentConsumerAdapter
from activestream.transport.confluent.errors import translate_error
from activestream.transport.confluent.fairness import FAIR_SHARE, QUEUED_MAX_KBYTES, FairShare
from activestream.transport.confluent.producer import ConfluentProducerAdapter
from activestream.transport.confluent.reader import READER_GROUP_ID, ConfluentReaderAdapter
from activestream.transport.confluent.records import ck_partition, our_message, our_partition

__all__ = [
    "FAIR_SHARE",
    "QUEUED_MAX_KBYTES",
    "READER_GROUP_ID",
    "ConfluentAdminAdapter",
    "ConfluentConsumerAdapter",
    "ConfluentProducerAdapter",
    "ConfluentReaderAdapter",
    "FairShare",
    "KafkaError",
    "KafkaException",
    "ck",
    "librdkafka_security",
    "rdkafka_log",
]

# The names these helpers had when the transport was one module (tests stand librdkafka in with them).
_ck = ck_partition
_ours = our_partition
_message = our_message
_translate_error = translate_error
