"""The group protocol at the wire level, where the exact error codes are visible."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from infra.devbroker import Broker

from .wire import WireClient

JOIN, HEARTBEAT, SYNC, DESCRIBE = 11, 12, 14, 15
MEMBER_ID_REQUIRED, FENCED_INSTANCE_ID, UNKNOWN_MEMBER_ID = 79, 82, 25
INVALID_SESSION_TIMEOUT = 26


@pytest.fixture
async def wire(broker):
    clients: list[WireClient] = []

    async def connect() -> WireClient:
        clients.append(await WireClient.connect(broker.port))
        return clients[-1]

    yield connect
    for client in clients:
        await client.close()


def join_body(member_id: str = "", instance: str | None = None, **timeouts) -> dict:
    return {
        "group_id": "g",
        "session_timeout": timeouts.get("session", 5000),
        "rebalance_timeout": timeouts.get("rebalance", 5000),
        "member_id": member_id,
        "group_instance_id": instance,
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": b"subscription"}],
    }


async def join_and_sync(client: WireClient, instance: str | None = None, **timeouts) -> dict:
    joined = await client.request(JOIN, 5, join_body("", instance, **timeouts))
    if joined["error_code"] == MEMBER_ID_REQUIRED:
        joined = await client.request(JOIN, 5, join_body(joined["member_id"], instance, **timeouts))
    assignments = [{"member_id": m["member_id"], "assignment": b"p0"} for m in joined["members"]]
    synced = await client.request(
        SYNC,
        3,
        {
            "group_id": "g",
            "generation_id": joined["generation_id"],
            "member_id": joined["member_id"],
            "group_instance_id": instance,
            "assignments": assignments,
        },
    )
    return {**joined, "assignment": synced["assignment"]}


def heartbeat_body(joined: dict, instance: str | None = None) -> dict:
    return {
        "group_id": "g",
        "generation_id": joined["generation_id"],
        "member_id": joined["member_id"],
        "group_instance_id": instance,
    }


async def test_a_new_dynamic_member_is_asked_to_rejoin_with_the_member_id_it_is_given(wire):
    client = await wire()
    first = await client.request(JOIN, 4, join_body())
    second = await client.request(JOIN, 4, join_body(first["member_id"]))
    assert first["error_code"] == MEMBER_ID_REQUIRED and first["member_id"]
    assert second["error_code"] == 0
    assert second["member_id"] == second["leader"] == first["member_id"]
    assert second["generation_id"] == 1


async def test_an_old_join_group_version_gets_its_member_id_at_once(wire):
    joined = await (await wire()).request(JOIN, 3, join_body())
    assert joined["error_code"] == 0 and joined["member_id"]


async def test_a_stale_member_id_of_a_static_instance_is_fenced(wire):
    old, new = await wire(), await wire()
    zombie = await join_and_sync(old, "worker-1")
    replacement = await join_and_sync(new, "worker-1")

    fenced = await old.request(HEARTBEAT, 3, heartbeat_body(zombie, "worker-1"))
    alive = await new.request(HEARTBEAT, 3, heartbeat_body(replacement, "worker-1"))

    assert replacement["member_id"] != zombie["member_id"]
    assert replacement["generation_id"] == zombie["generation_id"]  # no rebalance
    assert replacement["assignment"] == b"p0"  # its assignment is handed back
    assert (fenced["error_code"], alive["error_code"]) == (FENCED_INSTANCE_ID, 0)


async def test_a_member_that_stops_heartbeating_is_removed_after_its_session_timeout(wire, broker):
    client = await wire()
    joined = await join_and_sync(client, session=300)
    await asyncio.sleep(0.6)
    late = await client.request(HEARTBEAT, 3, heartbeat_body(joined))
    described = await client.request(DESCRIBE, 4, {"groups": ["g"]})
    assert late["error_code"] == UNKNOWN_MEMBER_ID
    assert described["groups"][0]["group_state"] == "Empty"


async def test_a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_dropped(wire):
    slow, newcomer = await wire(), await wire()
    await join_and_sync(slow, session=10_000, rebalance=300)
    loop = asyncio.get_running_loop()
    started = loop.time()
    joined = await newcomer.request(JOIN, 3, join_body(session=10_000, rebalance=300))
    assert joined["error_code"] == 0
    assert joined["generation_id"] == 2
    assert [m["member_id"] for m in joined["members"]] == [joined["member_id"]]
    assert 0.25 <= loop.time() - started < 2


async def test_a_session_timeout_outside_the_broker_bounds_is_refused(wire):
    refused = await (await wire()).request(JOIN, 5, join_body(session=10))
    assert refused["error_code"] == INVALID_SESSION_TIMEOUT


@pytest.fixture
def delayed_config(broker_config):
    return dataclasses.replace(broker_config, group_initial_rebalance_delay_ms=400)


async def test_the_initial_rebalance_delay_gathers_early_joiners_into_one_generation(
    delayed_config,
):
    broker = Broker(delayed_config)
    await broker.start()
    try:
        first, second = [await WireClient.connect(broker.port) for _ in range(2)]
        joins = await asyncio.gather(
            first.request(JOIN, 3, join_body()), second.request(JOIN, 3, join_body())
        )
        await first.close()
        await second.close()
    finally:
        await broker.stop()
    assert [j["generation_id"] for j in joins] == [1, 1]
    assert sorted(len(j["members"]) for j in joins) == [0, 2]
