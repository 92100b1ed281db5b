"""The group protocol at the wire level, where the exact error codes are visible."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.kafka_wire import WireClient

FIND_COORDINATOR, JOIN, HEARTBEAT, SYNC, DESCRIBE = 10, 11, 12, 14, 15
MEMBER_ID_REQUIRED, FENCED_INSTANCE_ID, UNKNOWN_MEMBER_ID = 79, 82, 25
INVALID_SESSION_TIMEOUT = 26


@pytest.fixture
def group(unique) -> str:
    return unique("g")


@pytest.fixture
async def wire(kafka_broker, group):
    clients: list[WireClient] = []

    async def connect() -> WireClient:
        clients.append(await WireClient.connect(kafka_broker.port))
        return clients[-1]

    await coordinator_ready(await connect(), group)
    yield connect
    for client in clients:
        await client.close()


async def coordinator_ready(client: WireClient, group: str) -> None:
    """Kafka answers group requests only once __consumer_offsets exists and the group's
    partition of it is loaded: until then it says COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
    or COORDINATOR_LOAD_IN_PROGRESS, which real clients retry. The dev broker is ready at once.
    """
    async with asyncio.timeout(30):
        while True:
            found = await client.request(FIND_COORDINATOR, 1, {"key": group, "key_type": 0})
            if found["error_code"] == 0:
                described = await client.request(DESCRIBE, 4, {"groups": [group]})
                if described["groups"][0]["error_code"] == 0:
                    return
            await asyncio.sleep(0.1)


def join_body(group: str, member_id: str = "", instance: str | None = None, **timeouts) -> dict:
    return {
        "group_id": group,
        "session_timeout": timeouts.get("session", 5000),
        "rebalance_timeout": timeouts.get("rebalance", 5000),
        "member_id": member_id,
        "group_instance_id": instance,
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": b"subscription"}],
    }


async def join_and_sync(
    client: WireClient, group: str, instance: str | None = None, **timeouts
) -> dict:
    joined = await client.request(JOIN, 5, join_body(group, "", instance, **timeouts))
    if joined["error_code"] == MEMBER_ID_REQUIRED:
        joined = await client.request(
            JOIN, 5, join_body(group, joined["member_id"], instance, **timeouts)
        )
    assert joined["error_code"] == 0, joined
    assignments = [{"member_id": m["member_id"], "assignment": b"p0"} for m in joined["members"]]
    synced = await client.request(
        SYNC,
        3,
        {
            "group_id": group,
            "generation_id": joined["generation_id"],
            "member_id": joined["member_id"],
            "group_instance_id": instance,
            "assignments": assignments,
        },
    )
    return {**joined, "assignment": synced["assignment"]}


def heartbeat_body(group: str, joined: dict, instance: str | None = None) -> dict:
    return {
        "group_id": group,
        "generation_id": joined["generation_id"],
        "member_id": joined["member_id"],
        "group_instance_id": instance,
    }


async def test_a_new_dynamic_member_is_asked_to_rejoin_with_the_member_id_it_is_given(wire, group):
    client = await wire()
    first = await client.request(JOIN, 4, join_body(group))
    second = await client.request(JOIN, 4, join_body(group, first["member_id"]))
    assert first["error_code"] == MEMBER_ID_REQUIRED and first["member_id"]
    assert second["error_code"] == 0
    assert second["member_id"] == second["leader"] == first["member_id"]
    assert second["generation_id"] == 1


async def test_an_old_join_group_version_gets_its_member_id_at_once(wire, group):
    joined = await (await wire()).request(JOIN, 3, join_body(group))
    assert joined["error_code"] == 0 and joined["member_id"]


async def test_a_stale_member_id_of_a_static_instance_is_fenced(wire, group):
    old, new = await wire(), await wire()
    zombie = await join_and_sync(old, group, "worker-1")
    replacement = await join_and_sync(new, group, "worker-1")

    fenced = await old.request(HEARTBEAT, 3, heartbeat_body(group, zombie, "worker-1"))
    alive = await new.request(HEARTBEAT, 3, heartbeat_body(group, replacement, "worker-1"))

    assert replacement["member_id"] != zombie["member_id"]
    assert replacement["generation_id"] == zombie["generation_id"]  # no rebalance
    assert replacement["assignment"] == b"p0"  # its assignment is handed back
    assert (fenced["error_code"], alive["error_code"]) == (FENCED_INSTANCE_ID, 0)


async def test_a_member_that_stops_heartbeating_is_removed_after_its_session_timeout(wire, group):
    client = await wire()
    loop = asyncio.get_running_loop()
    joined = await join_and_sync(client, group, session=300)
    synced_at = loop.time()
    states: list[str] = []
    async with asyncio.timeout(10):
        while True:  # polling DescribeGroups is no heartbeat: it does not keep the member
            described = await client.request(DESCRIBE, 4, {"groups": [group]})
            states.append(described["groups"][0]["group_state"])
            if states[-1] == "Empty":
                break
            await asyncio.sleep(0.05)
    gone_after = loop.time() - synced_at
    late = await client.request(HEARTBEAT, 3, heartbeat_body(group, joined))

    assert states[0] == "Stable"  # it was a member until its session ran out
    assert gone_after >= 0.25
    assert late["error_code"] == UNKNOWN_MEMBER_ID


async def test_a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_dropped(wire, group):
    slow, newcomer = await wire(), await wire()
    await join_and_sync(slow, group, session=10_000, rebalance=300)
    loop = asyncio.get_running_loop()
    started = loop.time()
    joined = await newcomer.request(JOIN, 3, join_body(group, session=10_000, rebalance=300))
    assert joined["error_code"] == 0
    assert joined["generation_id"] == 2
    assert [m["member_id"] for m in joined["members"]] == [joined["member_id"]]
    assert 0.25 <= loop.time() - started < 2


async def test_a_session_timeout_outside_the_broker_bounds_is_refused(wire, group):
    refused = await (await wire()).request(JOIN, 5, join_body(group, session=10))
    assert refused["error_code"] == INVALID_SESSION_TIMEOUT
