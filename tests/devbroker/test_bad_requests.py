"""Bad input gets a clean Kafka error on its own connection; everyone else is served."""

from __future__ import annotations

import asyncio
import dataclasses
import struct

import pytest
from kio.schema.api_versions.v0.response import ApiVersionsResponse
from kio.serial import entity_reader

from .wire import WireClient, decode_response

API_VERSIONS, HEARTBEAT, PRODUCE = 18, 12, 0
UNSUPPORTED_VERSION, INVALID_REQUEST = 35, 42
LIMIT = 64 * 1024


@pytest.fixture
def broker_config(broker_config):
    return dataclasses.replace(broker_config, max_request_bytes=LIMIT)


@pytest.fixture
async def client(broker):
    connected = await WireClient.connect(broker.port)
    yield connected
    await connected.close()


def header(api_key: int, version: int, correlation_id: int) -> bytes:
    client_id = b"bad-client"
    return struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id


async def still_served(client: WireClient) -> bool:
    response = await client.request(
        API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"}
    )
    return response["error_code"] == 0


async def test_a_malformed_body_is_answered_with_invalid_request(client):
    await client.send_raw(header(HEARTBEAT, 3, 41) + b"\x00\x05gr")  # string cut short
    frame = await client.read_frame()
    correlation_id, _throttle, error = struct.unpack(">iih", frame)
    assert (correlation_id, error) == (41, INVALID_REQUEST)
    assert await still_served(client)


async def test_an_unknown_api_key_is_answered_with_unsupported_version(client):
    await client.send_raw(header(4242, 0, 7) + b"anything")
    assert struct.unpack(">ih", await client.read_frame()) == (7, UNSUPPORTED_VERSION)
    assert await still_served(client)


async def test_an_unsupported_version_of_a_known_api_gets_that_version_s_error_shape(client):
    await client.send_raw(header(PRODUCE, 2, 8) + b"\x00" * 16)
    assert struct.unpack(">ih", await client.read_frame()) == (8, UNSUPPORTED_VERSION)
    await client.send_raw(header(HEARTBEAT, 4, 9) + b"\x00" * 16)  # v4 is flexible, unsupported
    frame = await client.read_frame()
    assert frame[:4] == struct.pack(">i", 9)
    assert decode_response(HEARTBEAT, 4, frame)["error_code"] == UNSUPPORTED_VERSION
    assert await still_served(client)


async def test_an_unsupported_api_versions_version_gets_a_v0_answer_listing_what_is_supported(
    client,
):
    await client.send_raw(header(API_VERSIONS, 9, 5) + b"\x00")
    frame = await client.read_frame()
    response, _ = entity_reader(ApiVersionsResponse)(frame, 4)
    assert struct.unpack_from(">i", frame)[0] == 5
    assert response.error_code.value == UNSUPPORTED_VERSION
    supported = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert supported[API_VERSIONS] == (0, 3)
    assert supported[PRODUCE] == (3, 7)


async def test_an_oversized_request_is_skipped_and_refused_without_closing_the_connection(client):
    await client.send_raw(header(PRODUCE, 7, 11) + b"\x00" * (LIMIT * 3))
    frame = await client.read_frame()
    assert frame[:4] == struct.pack(">i", 11)
    assert await still_served(client)


async def test_a_frame_too_short_for_a_header_closes_only_that_connection(broker, client):
    other = await WireClient.connect(broker.port)
    try:
        await client.send_raw(b"\x00\x12", size=2)
        assert await asyncio.wait_for(client.reader.read(), 5) == b""  # closed by the broker
        assert await still_served(other)
    finally:
        await other.close()


async def test_other_clients_keep_producing_while_one_client_misbehaves(broker, producer):
    async def misbehave() -> None:
        for round_number in range(20):
            bad = await WireClient.connect(broker.port)
            await bad.send_raw(header(4242, 0, round_number))
            await bad.read_frame()
            await bad.send_raw(header(HEARTBEAT, 3, round_number) + b"\xff")
            await bad.read_frame()
            await bad.close()

    async def produce() -> list:
        sent = [await producer.send("steady", b"m", partition=0) for _ in range(200)]
        return [await future for future in sent]

    acknowledged, _ = await asyncio.gather(produce(), misbehave())
    assert [meta.offset for meta in acknowledged] == list(range(200))
