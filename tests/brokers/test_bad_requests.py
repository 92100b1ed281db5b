"""Bad input costs at most its own connection; everyone else is served.

The two brokers part ways on how: Apache Kafka closes the connection of a request it cannot
parse (a malformed body, an unknown API key, an unsupported version of any API but ApiVersions,
an oversized frame), while the dev broker answers it with a Kafka error code and keeps the
connection open. That is one of the dev broker's deliberate differences (docs/devbroker.md,
"Anything unsupported gets a Kafka error, not a dropped connection"), so those assertions are
per kind. Both close on a frame too short for a request header, and both answer an unsupported
ApiVersions version with a v0 body (KIP-511)."""

from __future__ import annotations

import asyncio
import struct

import pytest
from kio.schema.api_versions.v0.response import ApiVersionsResponse
from kio.serial import entity_reader

from tests.support.brokers import MAX_REQUEST_BYTES
from tests.support.kafka_wire import WireClient, decode_response

API_VERSIONS, HEARTBEAT, PRODUCE = 18, 12, 0
UNSUPPORTED_VERSION, INVALID_REQUEST = 35, 42


@pytest.fixture
async def client(kafka_broker):
    connected = await WireClient.connect(kafka_broker.port)
    yield connected
    await connected.close()


def header(api_key: int, version: int, correlation_id: int) -> bytes:
    client_id = b"bad-client"
    return struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id


async def supported_versions(client: WireClient) -> dict[int, tuple[int, int]]:
    response = await client.request(
        API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"}
    )
    assert response["error_code"] == 0
    return {k["api_key"]: (k["min_version"], k["max_version"]) for k in response["api_keys"]}


async def still_served(client: WireClient) -> bool:
    return API_VERSIONS in await supported_versions(client)


async def answer_or_close(client: WireClient) -> bytes | None:
    """The next frame, or None once the broker has closed the connection."""
    try:
        return await client.read_frame()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        return None


async def closed_by_the_broker(kafka_broker, client: WireClient) -> bool:
    """The broker closed `client` without answering, and a new connection is still served."""
    if await answer_or_close(client) is not None:
        return False
    fresh = await WireClient.connect(kafka_broker.port)
    try:
        return await still_served(fresh)
    finally:
        await fresh.close()


async def test_a_malformed_body_is_refused_on_its_own_connection(kafka_broker, client):
    await client.send_raw(header(HEARTBEAT, 3, 41) + b"\x00\x05gr")  # string cut short
    if kafka_broker.kind == "apache-kafka":
        # Kafka cannot parse the request, so it logs the error and closes the connection.
        assert await closed_by_the_broker(kafka_broker, client)
        return
    frame = await client.read_frame()
    correlation_id, _throttle, error = struct.unpack(">iih", frame)
    assert (correlation_id, error) == (41, INVALID_REQUEST)
    assert await still_served(client)


async def test_an_unknown_api_key_is_refused_on_its_own_connection(kafka_broker, client):
    await client.send_raw(header(4242, 0, 7) + b"anything")
    if kafka_broker.kind == "apache-kafka":
        # Kafka has no header schema for an unknown key and closes the connection.
        assert await closed_by_the_broker(kafka_broker, client)
        return
    assert struct.unpack(">ih", await client.read_frame()) == (7, UNSUPPORTED_VERSION)
    assert await still_served(client)


async def test_an_unsupported_version_of_a_known_api_is_refused_on_its_own_connection(
    kafka_broker, client
):
    # One past the newest version each broker advertises: the ranges differ between them.
    supported = await supported_versions(client)
    produce_version = supported[PRODUCE][1] + 1
    heartbeat_version = supported[HEARTBEAT][1] + 1
    if kafka_broker.kind == "apache-kafka":
        # Kafka answers an unsupported version only for ApiVersions; any other API's request
        # fails to parse and the connection is closed.
        await client.send_raw(header(HEARTBEAT, heartbeat_version, 9) + b"\x00" * 16)
        assert await closed_by_the_broker(kafka_broker, client)
        return
    # kio has no Produce response with a top-level error code: a bare header and int16 code.
    await client.send_raw(header(PRODUCE, produce_version, 8) + b"\x00" * 16)
    assert struct.unpack(">ih", await client.read_frame()) == (8, UNSUPPORTED_VERSION)
    assert heartbeat_version >= 4  # flexible: the answer has a v1 response header
    await client.send_raw(header(HEARTBEAT, heartbeat_version, 9) + b"\x00" * 16)
    frame = await client.read_frame()
    assert frame[:4] == struct.pack(">i", 9)
    assert decode_response(HEARTBEAT, heartbeat_version, frame)["error_code"] == UNSUPPORTED_VERSION
    assert await still_served(client)


async def test_an_unsupported_api_versions_version_gets_a_v0_answer_with_the_supported_range(
    client,
):
    advertised = await supported_versions(client)
    await client.send_raw(header(API_VERSIONS, 9, 5) + b"\x00")
    frame = await client.read_frame()
    response, _ = entity_reader(ApiVersionsResponse)(frame, 4)
    assert struct.unpack_from(">i", frame)[0] == 5
    assert response.error_code.value == UNSUPPORTED_VERSION
    # Like Kafka, only ApiVersions' own range: enough for the client to retry with one of them.
    supported = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert supported == {API_VERSIONS: advertised[API_VERSIONS]}
    assert await still_served(client)


async def test_an_oversized_request_is_refused_on_its_own_connection(kafka_broker, client):
    size = MAX_REQUEST_BYTES * 2
    if kafka_broker.kind == "apache-kafka":
        # Kafka refuses the frame on its size prefix alone and closes the connection, without
        # reading the body (so the test sends none: writing it could fail with a broken pipe).
        await client.send_raw(header(PRODUCE, 7, 11), size=size)
        assert await closed_by_the_broker(kafka_broker, client)
        return
    await client.send_raw(header(PRODUCE, 7, 11) + b"\x00" * (size - len(header(PRODUCE, 7, 11))))
    frame = await client.read_frame()
    assert frame[:4] == struct.pack(">i", 11)
    assert await still_served(client)


async def test_a_frame_too_short_for_a_header_closes_only_that_connection(kafka_broker, client):
    other = await WireClient.connect(kafka_broker.port)
    try:
        await client.send_raw(b"\x00\x12", size=2)
        assert await asyncio.wait_for(client.reader.read(), 5) == b""  # closed by the broker
        assert await still_served(other)
    finally:
        await other.close()


async def test_other_clients_keep_producing_while_one_client_misbehaves(
    kafka_broker, new_topic, producer
):
    topic = await new_topic("steady", 1)

    async def misbehave() -> list[bool]:
        answered = []
        for round_number in range(20):
            # Each bad request on a connection of its own: Apache Kafka closes it.
            for bad_request in (header(4242, 0, round_number), header(HEARTBEAT, 3, 1) + b"\xff"):
                bad = await WireClient.connect(kafka_broker.port)
                try:
                    await bad.send_raw(bad_request)
                    answered.append(await answer_or_close(bad) is not None)
                finally:
                    await bad.close()
        return answered

    async def produce() -> list:
        sent = [await producer.send(topic, b"m", partition=0) for _ in range(200)]
        return [await future for future in sent]

    acknowledged, answered = await asyncio.gather(produce(), misbehave())
    assert [meta.offset for meta in acknowledged] == list(range(200))
    # The dev broker answers every bad request (see the module docstring); Kafka closes.
    assert answered == [kafka_broker.kind == "devbroker"] * 40
