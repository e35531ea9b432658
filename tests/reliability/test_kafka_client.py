"""A kafka-python 3.0.12 behaviour that stalls the service: found by the outage tests, reproduced here.

kafka-python's producer only *tracks* a topic (asks for its metadata on refreshes) when it had to wait
for its metadata on the first send; a topic already in the bootstrap metadata (which lists every topic)
is never tracked. A later metadata update for another topic replaces the whole cached view, so the
untracked topic's partitions vanish: "Unknown leaders exist, requesting metadata update" in a tight
loop, and its records hang until ``delivery_timeout_ms`` (120 s), then fail.

In the service: ``build_service`` creates the producer (bootstrap: every topic that exists) before
``Service.start`` creates the missing ones. A first start that creates, say, the audit-trail topic
while the requests topic exists can have its first label requests hang; the flush times out and the
service dies (or, since it now waits out unacknowledged records, stalls until the delivery timeout),
and the restart works. Fix, in ``KafkaProducerAdapter.produce`` (not in this suite's files): on the
first record to a topic, track it as kafka-python does for a topic it had to wait for —
``self._producer._sender.add_topic(topic)`` — so that no later update drops it.
"""

from __future__ import annotations

import pytest

from activestream.transport.errors import DeliveryError
from activestream.transport.kafka import KafkaAdminAdapter, KafkaProducerAdapter

pytestmark = pytest.mark.broker


@pytest.mark.xfail(
    strict=True,
    raises=DeliveryError,
    reason="kafka-python 3.0.12 (see the module docstring): records to a topic known only from the "
    "bootstrap metadata hang once the producer fetches metadata for another topic",
)
def test_records_to_a_topic_known_at_bootstrap_survive_a_metadata_update_for_another(broker, unique_name):
    known, new = unique_name("known"), unique_name("new")
    admin = KafkaAdminAdapter(bootstrap_servers=broker.bootstrap_servers)
    producer = None
    try:
        admin.ensure_topics([known])
        # linger: the first record is still waiting in the accumulator when the second one's metadata
        # update arrives (the service hits the same window with a label request and its audit record).
        producer = KafkaProducerAdapter(
            bootstrap_servers=broker.bootstrap_servers, linger_ms=200, close_timeout_s=1.0
        )
        admin.ensure_topics([new])  # created after the producer bootstrapped, as Service.start does
        producer.produce(known, b"a label request")
        producer.produce(new, b"its audit record")
        producer.flush(4.0)
    finally:
        admin.close()
        if producer is not None:
            producer.close()
