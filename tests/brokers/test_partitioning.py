"""Ordering is per partition only: a key always lands on the same partition, chosen
by the client's murmur2 partitioner, and keeps its order there."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from tests.support.kafka_clients import consume


async def test_keyed_messages_land_on_the_murmur2_partition_and_keep_per_key_order(
    new_topic, unique, producer, make_consumer
):
    topic = await new_topic("member-points", 6)
    keys = [f"member-{n}".encode() for n in range(12)]
    partitioner = DefaultPartitioner()
    expected = {key: partitioner(key, list(range(6)), list(range(6))) for key in keys}
    sent = [
        await producer.send(topic, f"{key.decode()}:{seq}".encode(), key=key)
        for seq in range(15)
        for key in keys
    ]
    placed = [await future for future in sent]

    consumer = make_consumer(topic, group_id=unique("points-reader"))
    await consumer.start()
    try:
        received = await consume(consumer, len(sent))
    finally:
        await consumer.stop()

    assert all(meta.partition == expected[key] for meta, key in zip(placed, keys * 15, strict=True))
    assert len({m.partition for m in received}) > 1
    for key in keys:
        of_key = [m for m in received if m.key == key]
        assert {m.partition for m in of_key} == {expected[key]}
        assert [int(m.value.split(b":")[1]) for m in of_key] == list(range(15))
