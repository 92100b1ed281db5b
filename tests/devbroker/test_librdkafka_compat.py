"""librdkafka (through the confluent-kafka wheel, which bundles it) against the dev
broker: a second, independent implementation of the protocol's client side."""

from __future__ import annotations

import asyncio
import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
admin = pytest.importorskip("confluent_kafka.admin")


def produce_keyed(bootstrap: str, topic: str, count: int) -> list[tuple[int, int]]:
    delivered: list[tuple[int, int]] = []
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )

    def on_delivery(error, message) -> None:
        assert error is None, error
        delivered.append((message.partition(), message.offset()))

    for number in range(count):
        producer.produce(
            topic, key=f"member-{number % 4}", value=f"{number}", on_delivery=on_delivery
        )
    assert producer.flush(15) == 0
    return delivered


def consume_in_group(bootstrap: str, topic: str, count: int) -> list:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "librdkafka-readers",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 1500,
            "heartbeat.interval.ms": 100,
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received = []
    deadline = time.monotonic() + 20
    try:
        while len(received) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                received.append(message)
        consumer.commit(asynchronous=False)
        assignment = consumer.assignment()
    finally:
        consumer.close()
    return [received, assignment]


def list_topics(bootstrap: str):
    return admin.AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)


async def test_librdkafka_reads_cluster_metadata(bootstrap, broker):
    broker.topics.create("inventory", 4)
    metadata = await asyncio.to_thread(list_topics, bootstrap)
    assert list(metadata.brokers) == [0]
    assert len(metadata.topics["inventory"].partitions) == 4
    assert metadata.topics["inventory"].partitions[2].leader == 0


async def test_librdkafka_produces_and_consumes_in_a_group_with_committed_offsets(
    bootstrap, broker
):
    delivered = await asyncio.to_thread(produce_keyed, bootstrap, "rdk-orders", 40)
    received, assignment = await asyncio.to_thread(consume_in_group, bootstrap, "rdk-orders", 40)
    assert sorted(delivered) == sorted((m.partition(), m.offset()) for m in received)
    by_key: dict[bytes, list[int]] = {}
    for message in received:
        by_key.setdefault(message.key(), []).append(int(message.value()))
    assert all(values == sorted(values) for values in by_key.values())
    assert {tp.partition for tp in assignment} == {0, 1, 2}
    committed = broker.offsets.committed("librdkafka-readers")
    logs = enumerate(broker.topics.partitions["rdk-orders"])
    ends = {p: log.end_offset for p, log in logs if log.end_offset}  # librdkafka skips empty ones
    assert {p: offset for (_, p), (offset, _) in committed.items()} == ends
