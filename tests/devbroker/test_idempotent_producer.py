"""An idempotent producer's retried batch is acknowledged again, not appended again."""

from __future__ import annotations

import pytest

from infra.devbroker import Broker

from .wire import WireClient, produce_body, record_batch

PRODUCE, INIT_PRODUCER_ID = 0, 22
OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH = 45, 47


@pytest.fixture
async def client(broker):
    broker.topics.create("payments", 1)
    connected = await WireClient.connect(broker.port)
    yield connected
    await connected.close()


async def producer_id(client: WireClient) -> int:
    response = await client.request(
        INIT_PRODUCER_ID, 0, {"transactional_id": None, "transaction_timeout": 60_000}
    )
    assert response["error_code"] == 0 and response["producer_epoch"] == 0
    return response["producer_id"]


async def send(client: WireClient, batch: bytes) -> dict:
    response = await client.request(PRODUCE, 7, produce_body("payments", 0, batch))
    return response["responses"][0]["partition_responses"][0]


async def test_a_retried_batch_is_not_appended_twice(broker, client):
    pid = await producer_id(client)
    first = record_batch([b"charge-1", b"charge-2"], pid, 0, sequence=0)
    second = record_batch([b"charge-3"], pid, 0, sequence=2)

    original = await send(client, first)
    retried = await send(client, first)  # the acknowledgement was lost; the client retries
    following = await send(client, second)

    assert (original["error_code"], original["base_offset"]) == (0, 0)
    assert (retried["error_code"], retried["base_offset"]) == (0, 0)
    assert (following["error_code"], following["base_offset"]) == (0, 2)
    assert broker.topics.get("payments", 0).end_offset == 3


async def test_a_sequence_gap_is_refused_as_out_of_order(client):
    pid = await producer_id(client)
    await send(client, record_batch([b"a"], pid, 0, sequence=0))
    gap = await send(client, record_batch([b"c"], pid, 0, sequence=2))
    assert gap["error_code"] == OUT_OF_ORDER_SEQUENCE_NUMBER


async def test_a_batch_from_an_older_producer_epoch_is_fenced(client):
    pid = await producer_id(client)
    await send(client, record_batch([b"a"], pid, 1, sequence=0))
    zombie = await send(client, record_batch([b"b"], pid, 0, sequence=1))
    assert zombie["error_code"] == INVALID_PRODUCER_EPOCH


async def test_duplicate_detection_survives_a_broker_restart(broker, broker_config, client):
    pid = await producer_id(client)
    batch = record_batch([b"charge"], pid, 0, sequence=0)
    await send(client, batch)
    await client.close()
    await broker.stop()
    restarted = Broker(broker_config)
    await restarted.start()
    try:
        again = await WireClient.connect(restarted.port)
        retried = await send(again, batch)
        fresh_id = await producer_id(again)
        await again.close()
    finally:
        await restarted.stop()
    assert (retried["error_code"], retried["base_offset"]) == (0, 0)
    assert restarted.topics.get("payments", 0).end_offset == 1
    assert fresh_id > pid
