"""Raw kafka-python throughput against the embedded broker: the ceiling the service's own rate compares to.

Produces ``--messages`` records of ``--size`` bytes (default 100,000 x 200 B) to a fresh topic, then reads
them back, and prints messages per second for:

- **raw produce**: ``KafkaProducer.send`` for every record, then one ``flush`` (acks=all, idempotent,
  linger 5 ms: the settings ``KafkaProducerAdapter`` uses);
- **raw consume**: a ``KafkaConsumer`` with the partitions assigned by hand (no group join in the
  timing), ``poll`` until every record has been read;
- **adapter produce / consume**: the same through ``KafkaProducerAdapter`` / ``KafkaConsumerAdapter``
  (consumer-group member; timed from the first record, so the group join is not counted).

Without ``--bootstrap-servers`` it starts an ``EmbeddedBroker`` (Tansu, in memory). Numbers depend on the
machine and on the broker sharing its cores with the client.

    PYTHONPATH=service python benchmarks/kafka_raw_rate.py [--messages 100000] [--size 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from activestream.transport.kafka import KafkaAdminAdapter, KafkaConsumerAdapter, KafkaProducerAdapter


def payloads(count: int, size: int) -> list[bytes]:
    filler = os.urandom(size)  # incompressible; no compression is configured anyway
    return [(b"%012d" % i + filler)[:size] for i in range(count)]


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


def run(servers: str, messages: int, size: int, partitions: int) -> list[tuple[str, float]]:
    values = payloads(messages, size)
    raw_topic, adapter_topic = f"bench-raw-{uuid.uuid4().hex[:8]}", f"bench-adapter-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminAdapter(bootstrap_servers=servers)
    try:
        admin.ensure_topics([raw_topic, adapter_topic], partitions=partitions)
    finally:
        admin.close()
    return [
        ("raw produce", raw_produce(servers, raw_topic, values)),
        ("raw consume", raw_consume(servers, raw_topic, partitions, messages)),
        ("adapter produce", adapter_produce(servers, adapter_topic, values)),
        ("adapter consume", adapter_consume(servers, adapter_topic, messages)),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=200, help="bytes per message value")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--bootstrap-servers", help="an existing broker (default: start an embedded one)")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        servers = args.bootstrap_servers
        if servers is None:
            from activestream.demo.broker import EmbeddedBroker

            servers = stack.enter_context(EmbeddedBroker()).bootstrap_servers
        results = run(servers, args.messages, args.size, args.partitions)

    import kafka

    print(
        f"{args.messages:,} messages x {args.size} B, {args.partitions} partition(s), broker "
        f"{'embedded Tansu' if args.bootstrap_servers is None else args.bootstrap_servers}; "
        f"kafka-python {kafka.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print("| path | msgs/s | MB/s |")
    print("|---|---:|---:|")
    for name, rate in results:
        print(f"| {name} | {rate:,.0f} | {rate * args.size / 1e6:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
