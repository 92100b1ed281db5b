"""librdkafka (through the confluent-kafka wheel, which bundles it) against each broker: a
second, independent implementation of the protocol's client side. Its clients are
synchronous, so they run in a thread while the event loop stays free."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.structs import TopicPartition

confluent_kafka = pytest.importorskip("confluent_kafka")
confluent_admin = pytest.importorskip("confluent_kafka.admin")


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


def consume_in_group(bootstrap: str, topic: str, group_id: str, count: int) -> list:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 1500,
            "heartbeat.interval.ms": 100,
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received = []
    deadline = time.monotonic() + 30
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
    return confluent_admin.AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)


async def test_librdkafka_reads_cluster_metadata(kafka_broker, new_topic):
    topic = await new_topic("inventory", 4)
    metadata = await asyncio.to_thread(list_topics, kafka_broker.bootstrap)
    # One broker, the one we bootstrapped from. Its node id is configuration: the dev broker's
    # default is 0, the Kafka node's server.properties says node.id=1.
    [(node_id, described)] = metadata.brokers.items()
    assert (described.host, described.port) == ("127.0.0.1", kafka_broker.port)
    assert metadata.controller_id == node_id
    partitions = metadata.topics[topic].partitions
    assert sorted(partitions) == [0, 1, 2, 3]
    assert all(p.leader == node_id and p.replicas == [node_id] for p in partitions.values())


async def test_librdkafka_produces_and_consumes_in_a_group_with_committed_offsets(
    bootstrap, new_topic, unique, admin, make_consumer
):
    topic, group_id = await new_topic("rdk-orders", 3), unique("librdkafka-readers")
    delivered = await asyncio.to_thread(produce_keyed, bootstrap, topic, 40)
    received, assignment = await asyncio.to_thread(consume_in_group, bootstrap, topic, group_id, 40)
    assert sorted(delivered) == sorted((m.partition(), m.offset()) for m in received)
    by_key: dict[bytes, list[int]] = {}
    for message in received:
        by_key.setdefault(message.key(), []).append(int(message.value()))
    assert all(values == sorted(values) for values in by_key.values())
    assert {tp.partition for tp in assignment} == {0, 1, 2}

    # What the group committed, as another client (the aiokafka admin) reads it back, and
    # the partitions' end offsets, as a consumer asks for them.
    committed = await admin.list_consumer_group_offsets(group_id)
    reader = make_consumer()
    await reader.start()
    try:
        ends = await reader.end_offsets([TopicPartition(topic, p) for p in range(3)])
    finally:
        await reader.stop()
    assert sum(ends.values()) == 40
    # librdkafka commits only what it consumed, so partitions no key landed on have no offset.
    non_empty = {tp.partition: end for tp, end in ends.items() if end}
    assert {tp.partition: meta.offset for tp, meta in committed.items()} == non_empty
    assert all(tp.topic == topic for tp in committed)
