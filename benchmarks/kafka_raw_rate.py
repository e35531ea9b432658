"""Raw Kafka client throughput against the embedded broker: the ceiling the service's own rate compares to.

Produces ``--messages`` records (default 100,000) to a fresh topic, then reads them back, and prints
messages per second, for each transport ``--transport`` names (``kafka-python``, ``confluent`` or
``both``):

- **raw produce**: the client's own producer, one send per record, then one flush (acks=all, idempotent,
  linger 5 ms: the settings the adapters use);
- **raw consume**: the client's own consumer with the partitions assigned by hand (no group join in
  the timing), polled until every record has been read (confluent: ``consume(500, ...)``);
- **adapter produce / consume**: the same through the transport's ``Producer`` / ``Consumer`` adapter
  (``transport.kafka`` or ``transport.confluent``; a consumer-group member, ``poll(1.0, 500)`` returning
  ``Message`` objects; timed from the first record, so the group join is not counted).

Records are ``--size`` bytes of random filler (``--payload random``, the default) or small JSON events
like the service reads (``--payload json``: an id and five features, about 130 B).

Without ``--bootstrap-servers`` it starts an ``EmbeddedBroker`` (Tansu, in memory). Numbers depend on the
machine and on the broker sharing its cores with the client.

    PYTHONPATH=service python benchmarks/kafka_raw_rate.py [--messages 100000] [--size 200]
    PYTHONPATH=service python benchmarks/kafka_raw_rate.py --transport both --payload json --messages 300000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import sys
import time
import uuid
from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from activestream.transport.kafka import KafkaAdminAdapter, KafkaConsumerAdapter, KafkaProducerAdapter


def payloads(count: int, size: int) -> list[bytes]:
    filler = os.urandom(size)  # incompressible; no compression is configured anyway
    return [(b"%012d" % i + filler)[:size] for i in range(count)]


def json_events(count: int, seed: int = 0) -> list[bytes]:
    """Small events as the service reads them: an id and five numeric features."""
    rng = random.Random(seed)
    return [
        json.dumps({"id": f"e{i}", "features": {f"x{j}": round(rng.random(), 6) for j in range(5)}}).encode()
        for i in range(count)
    ]


def raw_produce(servers: str, topic: str, values: list[bytes]) -> float:
    producer = KafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True, linger_ms=5)
    try:
        started = time.perf_counter()
        for value in values:
            producer.send(topic, value)
        producer.flush(120)
        return len(values) / (time.perf_counter() - started)
    finally:
        producer.close()


def raw_consume(servers: str, topic: str, partitions: int, count: int) -> float:
    consumer = KafkaConsumer(
        bootstrap_servers=servers, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        seen, started = 0, time.perf_counter()
        deadline = started + 300
        while seen < count and time.perf_counter() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                seen += len(records)
        if seen < count:
            raise RuntimeError(f"read {seen} of {count} records")
        return count / (time.perf_counter() - started)
    finally:
        consumer.close()


def adapter_produce(servers: str, topic: str, values: list[bytes]) -> float:
    producer = KafkaProducerAdapter(bootstrap_servers=servers)
    try:
        started = time.perf_counter()
        for value in values:
            producer.produce(topic, value)
        producer.flush(120)
        return len(values) / (time.perf_counter() - started)
    finally:
        producer.close()


def adapter_consume(servers: str, topic: str, count: int) -> float:
    consumer = KafkaConsumerAdapter(
        bootstrap_servers=servers,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    try:
        consumer.subscribe([topic])
        seen, started = 0, None
        deadline = time.perf_counter() + 300
        while seen < count and time.perf_counter() < deadline:
            batch = consumer.poll(1.0, 500)
            if batch and started is None:
                started = time.perf_counter()
            seen += len(batch)
        if seen < count or started is None:
            raise RuntimeError(f"read {seen} of {count} records")
        return (count - 1) / (time.perf_counter() - started)  # the first batch's arrival starts the clock
    finally:
        consumer.close()


def confluent_raw_produce(servers: str, topic: str, values: list[bytes]) -> float:
    import confluent_kafka

    producer = confluent_kafka.Producer(
        {"bootstrap.servers": servers, "acks": "all", "enable.idempotence": True, "linger.ms": 5}
    )
    started = time.perf_counter()
    for value in values:
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise RuntimeError("records not delivered")
    rate = len(values) / (time.perf_counter() - started)
    producer.close()
    return rate


def confluent_raw_consume(servers: str, topic: str, partitions: int, count: int) -> float:
    import confluent_kafka

    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": servers, "group.id": "unused", "enable.auto.commit": False}
    )
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, p, 0) for p in range(partitions)])
        seen, started = 0, time.perf_counter()
        deadline = started + 300
        while seen < count and time.perf_counter() < deadline:
            seen += sum(1 for m in consumer.consume(500, 1.0) if m.error() is None)
        if seen < count:
            raise RuntimeError(f"read {seen} of {count} records")
        return count / (time.perf_counter() - started)
    finally:
        consumer.close()


def adapter_produce_with(adapter: type, servers: str, topic: str, values: list[bytes]) -> float:
    producer = adapter(bootstrap_servers=servers)
    try:
        started = time.perf_counter()
        for value in values:
            producer.produce(topic, value)
        producer.flush(120)
        return len(values) / (time.perf_counter() - started)
    finally:
        producer.close()


def adapter_consume_with(adapter: type, servers: str, topic: str, count: int) -> float:
    consumer = adapter(
        bootstrap_servers=servers,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    try:
        consumer.subscribe([topic])
        seen, started = 0, None
        deadline = time.perf_counter() + 300
        while seen < count and time.perf_counter() < deadline:
            batch = consumer.poll(1.0, 500)
            if batch and started is None:
                started = time.perf_counter()
            seen += len(batch)
        if seen < count or started is None:
            raise RuntimeError(f"read {seen} of {count} records")
        return (count - 1) / (time.perf_counter() - started)  # the first batch's arrival starts the clock
    finally:
        consumer.close()


def steps(transport: str) -> dict[str, Callable[..., float]]:
    """The four measurements of one transport."""
    if transport == "kafka-python":
        return {
            "raw produce": raw_produce,
            "raw consume": raw_consume,
            "adapter produce": adapter_produce,
            "adapter consume": adapter_consume,
        }
    from activestream.transport.confluent import ConfluentConsumerAdapter, ConfluentProducerAdapter

    return {
        "raw produce": confluent_raw_produce,
        "raw consume": confluent_raw_consume,
        "adapter produce": lambda s, t, v: adapter_produce_with(ConfluentProducerAdapter, s, t, v),
        "adapter consume": lambda s, t, n: adapter_consume_with(ConfluentConsumerAdapter, s, t, n),
    }


def run(
    servers: str,
    messages: int,
    size: int,
    partitions: int,
    transport: str = "kafka-python",
    payload: str = "random",
) -> list[tuple[str, float]]:
    values = payloads(messages, size) if payload == "random" else json_events(messages)
    results = []
    for name in ["kafka-python", "confluent"] if transport == "both" else [transport]:
        step = steps(name)
        raw_topic, adapter_topic = (
            f"bench-raw-{uuid.uuid4().hex[:8]}",
            f"bench-adapter-{uuid.uuid4().hex[:8]}",
        )
        admin = KafkaAdminAdapter(bootstrap_servers=servers)
        try:
            admin.ensure_topics([raw_topic, adapter_topic], partitions=partitions)
        finally:
            admin.close()
        results += [
            (f"{name}: raw produce", step["raw produce"](servers, raw_topic, values)),
            (f"{name}: raw consume", step["raw consume"](servers, raw_topic, partitions, messages)),
            (f"{name}: adapter produce", step["adapter produce"](servers, adapter_topic, values)),
            (f"{name}: adapter consume", step["adapter consume"](servers, adapter_topic, messages)),
        ]
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=200, help="bytes per message value")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--bootstrap-servers", help="an existing broker (default: start an embedded one)")
    parser.add_argument("--transport", choices=["kafka-python", "confluent", "both"], default="kafka-python")
    parser.add_argument("--payload", choices=["random", "json"], default="random")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        servers = args.bootstrap_servers
        if servers is None:
            from activestream.demo.broker import EmbeddedBroker

            servers = stack.enter_context(EmbeddedBroker()).bootstrap_servers
        results = run(servers, args.messages, args.size, args.partitions, args.transport, args.payload)

    import kafka

    size = args.size if args.payload == "random" else sum(map(len, json_events(1000))) / 1000
    clients = f"kafka-python {kafka.__version__}"
    if args.transport != "kafka-python":
        import confluent_kafka

        clients += (
            f", confluent-kafka {confluent_kafka.version()} (librdkafka {confluent_kafka.libversion()[0]})"
        )
    print(
        f"{args.messages:,} messages x {size:.0f} B ({args.payload}), {args.partitions} partition(s), broker "
        f"{'embedded Tansu' if args.bootstrap_servers is None else args.bootstrap_servers}; "
        f"{clients}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average before the run {os.getloadavg()[0]:.1f}"
    )
    print("| path | msgs/s | MB/s |")
    print("|---|---:|---:|")
    for name, rate in results:
        print(f"| {name} | {rate:,.0f} | {rate * size / 1e6:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
