"""An idempotent producer's retried batch is acknowledged again, not appended again."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.kafka_clients import end_offsets
from tests.support.kafka_wire import WireClient, produce_body, record_batch

PRODUCE, INIT_PRODUCER_ID = 0, 22
OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH = 45, 47
# COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR: retriable.
COORDINATOR_NOT_READY = (14, 15, 16)
# UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER: retriable, the batch was not appended.
NOT_LEADING_YET = (3, 6)


@pytest.fixture
async def topic(new_topic) -> str:
    return await new_topic("payments", 1)


@pytest.fixture
async def client(kafka_broker, topic):
    connected = await WireClient.connect(kafka_broker.port)
    yield connected
    await connected.close()


async def producer_id(client: WireClient) -> int:
    """A new producer id, retried as clients do while Apache Kafka's transaction coordinator
    is still loading (its first InitProducerId creates __transaction_state)."""
    async with asyncio.timeout(30):
        while True:
            response = await client.request(
                INIT_PRODUCER_ID, 0, {"transactional_id": None, "transaction_timeout": 60_000}
            )
            if response["error_code"] not in COORDINATOR_NOT_READY:
                break
            await asyncio.sleep(0.1)
    assert response["error_code"] == 0 and response["producer_epoch"] == 0
    return response["producer_id"]


async def send(client: WireClient, topic: str, batch: bytes) -> dict:
    """The partition's answer, resent as clients do while the broker does not lead the
    partition yet: Apache Kafka applies a created topic a moment after CreateTopics has
    answered, and takes the leadership back a moment after a restart."""
    async with asyncio.timeout(30):
        while True:
            response = await client.request(PRODUCE, 7, produce_body(topic, 0, batch))
            answer = response["responses"][0]["partition_responses"][0]
            if answer["error_code"] not in NOT_LEADING_YET:
                return answer
            await asyncio.sleep(0.1)


async def test_a_retried_batch_is_not_appended_twice(client, topic, make_consumer):
    pid = await producer_id(client)
    first = record_batch([b"charge-1", b"charge-2"], pid, 0, sequence=0)
    second = record_batch([b"charge-3"], pid, 0, sequence=2)

    original = await send(client, topic, first)
    retried = await send(client, topic, first)  # the acknowledgement was lost; the client retries
    following = await send(client, topic, second)

    assert (original["error_code"], original["base_offset"]) == (0, 0)
    assert (retried["error_code"], retried["base_offset"]) == (0, 0)
    assert (following["error_code"], following["base_offset"]) == (0, 2)
    assert (await end_offsets(make_consumer, topic))[0] == 3


async def test_a_sequence_gap_is_refused_as_out_of_order(client, topic):
    pid = await producer_id(client)
    assert (await send(client, topic, record_batch([b"a"], pid, 0, sequence=0)))["error_code"] == 0
    gap = await send(client, topic, record_batch([b"c"], pid, 0, sequence=2))
    assert gap["error_code"] == OUT_OF_ORDER_SEQUENCE_NUMBER


async def test_a_batch_from_an_older_producer_epoch_is_fenced(client, topic):
    pid = await producer_id(client)
    newer = await send(client, topic, record_batch([b"a"], pid, 1, sequence=0))
    assert newer["error_code"] == 0  # a bumped epoch starts its sequence afresh
    zombie = await send(client, topic, record_batch([b"b"], pid, 0, sequence=1))
    assert zombie["error_code"] == INVALID_PRODUCER_EPOCH


async def test_duplicate_detection_survives_a_broker_restart(
    kafka_broker, client, topic, make_consumer
):
    pid = await producer_id(client)
    batch = record_batch([b"charge"], pid, 0, sequence=0)
    original = await send(client, topic, batch)
    assert (original["error_code"], original["base_offset"]) == (0, 0)
    await client.close()
    await kafka_broker.restart()
    again = await WireClient.connect(kafka_broker.port)
    try:
        retried = await send(again, topic, batch)
        fresh_id = await producer_id(again)
    finally:
        await again.close()
    assert (retried["error_code"], retried["base_offset"]) == (0, 0)
    assert (await end_offsets(make_consumer, topic))[0] == 1
    assert fresh_id > pid
