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

>>> from activestream.transport.base import TopicPartition
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

from activestream.transport.memory.broker import LOGICAL_CLOCK_START_MS, MemoryBroker, murmur2
from activestream.transport.memory.clients import MemoryAdmin, MemoryConsumer, MemoryProducer, MemoryReader

__all__ = [
    "LOGICAL_CLOCK_START_MS",
    "MemoryAdmin",
    "MemoryBroker",
    "MemoryConsumer",
    "MemoryProducer",
    "MemoryReader",
    "murmur2",
]
