"""The production transport: kafka-python 3 behind the ``transport.base`` contract.

Nothing here is specific to one broker: the same code runs against Apache Kafka and against the Tansu
broker the demo embeds. Where Tansu differs, the adapter uses a broker-neutral formulation that is
right on both (see ``KafkaConsumerAdapter.lag``).

Errors: kafka-python exceptions are translated (``transport.errors``): retriable ones (connection
refused, timeouts, no coordinator) become ``BrokerUnavailable``, the others ``TransportError``;
``KafkaProducerAdapter.flush`` raises ``DeliveryError``. Exceptions raised by the loop's own rebalance
callbacks propagate unchanged.

The adapters, one module each: ``consumer`` (``KafkaConsumerAdapter``), ``producer``
(``KafkaProducerAdapter``), ``admin`` (``KafkaAdminAdapter``), ``reader`` (``KafkaReaderAdapter``: one
partition from an offset, in no group); ``client`` holds what they share (error translation, client
configuration, records converted to messages).

All four take explicit keyword arguments and a ``from_settings(settings, **overrides)`` classmethod
(``transport.options.FromSettings``, shared with the confluent adapters) that reads the service's
``Settings`` (duck-typed: ``bootstrap_servers``, ``group_id``, ``session_timeout_ms``,
``heartbeat_interval_ms``, ``max_poll_records``, ``max_message_bytes``, ``kafka_security_kwargs()``,
optional ``group_instance_id`` and ``client_id``). ``security`` takes the kafka-python SASL/SSL
keyword arguments; ``kafka_options`` passes any other kafka-python setting through unchanged.
"""

from activestream.transport.kafka.admin import KafkaAdminAdapter
from activestream.transport.kafka.consumer import KafkaConsumerAdapter
from activestream.transport.kafka.producer import KafkaProducerAdapter
from activestream.transport.kafka.reader import KafkaReaderAdapter

__all__ = ["KafkaAdminAdapter", "KafkaConsumerAdapter", "KafkaProducerAdapter", "KafkaReaderAdapter"]
