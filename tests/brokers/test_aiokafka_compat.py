"""aiokafka 0.14, the services' own client, against each broker over real sockets."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from aiokafka.structs import TopicPartition

from libs.events.topics import wait_visible
from tests.support.kafka_clients import consume, end_offsets


async def test_admin_client_creates_a_topic_with_the_requested_partitions(admin, unique):
    topic = unique("member-events")
    created = await admin.create_topics([NewTopic(topic, 6, 1)])
    await wait_visible(admin, [topic], within=10.0)  # Kafka's brokers learn of it a moment later
    described = await admin.describe_topics([topic])
    again = await admin.create_topics([NewTopic(topic, 6, 1)])
    assert created.topic_errors[0][:2] == (topic, 0)
    assert len(described[0]["partitions"]) == 6
    assert again.topic_errors[0][1] == 36  # TOPIC_ALREADY_EXISTS


async def test_produced_messages_are_consumed_with_their_keys_headers_and_offsets(
    producer, make_consumer, unique
):
    topic = unique("orders")
    for number in range(20):
        await producer.send_and_wait(
            topic, f"order-{number}".encode(), key=b"member-1", headers=[("type", b"created")]
        )
    consumer = make_consumer(topic, group_id=unique("order-reader"))
    await consumer.start()
    try:
        received = await consume(consumer, 20)
    finally:
        await consumer.stop()
    assert [m.value for m in received] == [f"order-{n}".encode() for n in range(20)]
    assert [m.offset for m in received] == list(range(20))
    assert all(m.key == b"member-1" and m.headers == (("type", b"created"),) for m in received)


async def test_idempotent_producer_is_given_a_producer_id_and_appends_in_order(
    bootstrap, make_consumer, unique
):
    topic = unique("payments")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        sent = [producer.send(topic, f"p{n}".encode(), partition=0) for n in range(50)]
        offsets = [(await future).offset for future in await asyncio.gather(*sent)]
    finally:
        await producer.stop()
    assert offsets == list(range(50))
    assert await end_offsets(make_consumer, topic) == {0: 50}


async def test_compressed_batches_are_stored_as_sent_and_read_back(
    bootstrap, make_consumer, unique
):
    topic = unique("compressed")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip")
    await producer.start()
    try:
        for number in range(10):
            await producer.send(topic, b"x" * 500 + bytes([number]), partition=1)
        await producer.flush()
    finally:
        await producer.stop()
    consumer = make_consumer()
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 1)])
        received = await consume(consumer, 10)
    finally:
        await consumer.stop()
    assert [m.value[-1] for m in received] == list(range(10))


async def test_offsets_for_times_and_end_offsets_are_answered_by_list_offsets(
    producer, make_consumer, unique
):
    topic = unique("clock")
    first = await producer.send_and_wait(topic, b"early", partition=0, timestamp_ms=1_000)
    await producer.send_and_wait(topic, b"late", partition=0, timestamp_ms=5_000)
    consumer = make_consumer()
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        found = await consumer.offsets_for_times({partition: 2_000})
        ends = await consumer.end_offsets([partition])
        starts = await consumer.beginning_offsets([partition])
    finally:
        await consumer.stop()
    assert found[partition].offset == first.offset + 1
    assert found[partition].timestamp == 5_000
    assert (starts[partition], ends[partition]) == (0, 2)


async def test_a_waiting_consumer_receives_a_new_message_without_polling_delay(
    producer, make_consumer, unique
):
    topic = unique("latency")
    await producer.send_and_wait(topic, b"warm-up", partition=0)
    consumer = make_consumer(fetch_max_wait_ms=5000)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consume(consumer, 1)
        loop = asyncio.get_running_loop()
        pending = asyncio.ensure_future(consume(consumer, 1))
        await asyncio.sleep(0.3)  # the fetch is now parked in the broker's long-poll
        sent_at = loop.time()
        await producer.send_and_wait(topic, b"now", partition=0)
        [message] = await pending
        waited = loop.time() - sent_at
    finally:
        await consumer.stop()
    assert message.value == b"now"
    assert waited < 1.0


async def test_groups_can_be_listed_and_described_for_inspection(admin, make_consumer, unique):
    group_id = unique("read-model-views")
    consumer = make_consumer(unique("inspected"), group_id=group_id)
    await consumer.start()
    try:
        await consume_nothing_until_assigned(consumer)
        listed = await admin.list_consumer_groups()
        [described] = await admin.describe_consumer_groups([group_id])
    finally:
        await consumer.stop()
    assert (group_id, "consumer") in listed
    group = described.groups[0]
    assert (group[1], group[2], group[3], group[4]) == (
        group_id,
        "Stable",
        "consumer",
        "roundrobin",
    )
    assert len(group[5]) == 1


async def consume_nothing_until_assigned(consumer) -> None:
    async with asyncio.timeout(10):
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=50)
