"""Consumer groups with aiokafka: the rebalances the talk's lessons are about."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.structs import TopicPartition

from tests.support.kafka_clients import RebalanceLog, consume, until
from tests.support.kafka_wire import WireClient

DESCRIBE_GROUPS = 15
PARTITIONS = 6


@pytest.fixture
async def topic(new_topic) -> str:
    return await new_topic("order-events", PARTITIONS)


def every_partition(topic: str) -> frozenset[TopicPartition]:
    return frozenset(TopicPartition(topic, p) for p in range(PARTITIONS))


class Member:
    """A consumer that keeps polling in the background, as a service would."""

    def __init__(self, consumer, log: RebalanceLog) -> None:
        self.consumer, self.log = consumer, log
        self.received: list = []
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()

    async def _poll(self) -> None:
        while True:
            for messages in (await self.consumer.getmany(timeout_ms=100)).values():
                self.received.extend(messages)


@pytest.fixture
async def members(make_consumer, topic):
    started: list[Member] = []

    async def start(group: str, **options) -> Member:
        log = RebalanceLog()
        consumer = make_consumer(group_id=group, **options)
        consumer.subscribe([topic], listener=log)
        member = Member(consumer, log)
        await member.start()
        started.append(member)
        return member

    yield start
    for member in started:
        with contextlib.suppress(Exception):
            await member.stop()


def covers_disjointly(group: list[Member], topic: str) -> bool:
    assignments = [m.log.assigned for m in group]
    everything = every_partition(topic)
    return (
        sum(len(a) for a in assignments) == len(everything)
        and frozenset().union(*assignments) == everything
    )


async def describe(port: int, group_id: str) -> dict:
    """DescribeGroups v4, the first version that shows each member's group.instance.id
    (aiokafka's admin client stops at v3)."""
    client = await WireClient.connect(port)
    try:
        described = await client.request(DESCRIBE_GROUPS, 4, {"groups": [group_id]})
    finally:
        await client.close()
    [group] = described["groups"]
    assert group["error_code"] == 0, group
    return group


def assigned_partitions(member_assignment: bytes) -> frozenset[TopicPartition]:
    return frozenset(ConsumerProtocolMemberAssignment.decode(member_assignment).partitions())


async def test_a_group_of_three_gets_a_disjoint_cover_of_the_partitions(
    members, topic, admin, unique
):
    group_id = unique("trio")
    trio = [await members(group_id) for _ in range(3)]
    await until(lambda: covers_disjointly(trio, topic) and all(m.log.assigned for m in trio))
    [response] = await admin.describe_consumer_groups([group_id])
    [(error, _, state, protocol_type, _, described_members, *_)] = response.groups

    assert (error, state, protocol_type) == (0, "Stable", "consumer")
    assert all(len(m.log.assigned) == 2 for m in trio)
    # What the coordinator describes is what the members were told they own.
    assert len(described_members) == 3
    assert {assigned_partitions(m[4]) for m in described_members} == {m.log.assigned for m in trio}


async def test_a_member_leaving_makes_the_others_stop_then_resume_with_its_partitions(
    members, topic, producer, unique
):
    group_id = unique("leavers")
    trio = [await members(group_id) for _ in range(3)]
    await until(lambda: covers_disjointly(trio, topic) and all(m.log.assigned for m in trio))
    staying, leaving = trio[:2], trio[2]
    before = [len(m.log.events) for m in staying]

    await leaving.stop()  # a dynamic member sends LeaveGroup
    await until(lambda: covers_disjointly(staying, topic))

    for member, seen in zip(staying, before, strict=True):
        kinds = [kind for kind, _ in member.log.events[seen:]]
        assert kinds[:2] == ["revoked", "assigned"]  # eager: give everything up first
    for partition in range(PARTITIONS):
        await producer.send_and_wait(topic, b"after-leave", partition=partition)
    await until(lambda: sum(len(m.received) for m in staying) == PARTITIONS)


async def test_static_member_rejoining_within_session_timeout_keeps_its_partitions_without_rebalance(  # noqa: E501
    kafka_broker, members, topic, unique
):
    group_id = unique("statics")
    static = {"session_timeout_ms": 3000}
    first = await members(group_id, group_instance_id="order-worker-1", **static)
    other = await members(group_id, group_instance_id="order-worker-2", **static)
    await until(lambda: covers_disjointly([first, other], topic))
    before = await describe(kafka_broker.port, group_id)
    owned, other_events = first.log.assigned, len(other.log.events)

    await first.stop()  # static members do not send LeaveGroup: a restart, not a departure
    restarted = await members(group_id, group_instance_id="order-worker-1", **static)
    await until(lambda: restarted.log.assigned)
    after = await describe(kafka_broker.port, group_id)

    assert restarted.log.assigned == owned
    # A rebalance would have made the other member revoke everything and rejoin (eager).
    assert len(other.log.events) == other_events  # the other member never stopped
    assert after["group_state"] == "Stable"
    instances = {m["group_instance_id"]: m["member_id"] for m in before["members"]}
    replaced = {m["group_instance_id"]: m["member_id"] for m in after["members"]}
    assert replaced.keys() == instances.keys() == {"order-worker-1", "order-worker-2"}
    assert replaced["order-worker-1"] != instances["order-worker-1"]  # a new member id
    assert replaced["order-worker-2"] == instances["order-worker-2"]
    assert {
        m["group_instance_id"]: assigned_partitions(m["member_assignment"])
        for m in after["members"]
    } == {"order-worker-1": owned, "order-worker-2": other.log.assigned}


async def test_static_member_gone_past_its_session_timeout_is_replaced_by_a_rebalance(
    kafka_broker, members, topic, unique
):
    group_id = unique("statics-gone")
    static = {"session_timeout_ms": 800}
    gone = await members(group_id, group_instance_id="payment-worker-1", **static)
    other = await members(group_id, group_instance_id="payment-worker-2", **static)
    await until(lambda: covers_disjointly([gone, other], topic))

    await gone.stop()
    await until(lambda: other.log.assigned == every_partition(topic), within=5)
    described = await describe(kafka_broker.port, group_id)
    assert described["group_state"] == "Stable"
    assert [m["group_instance_id"] for m in described["members"]] == ["payment-worker-2"]


async def test_committed_offsets_let_a_restarted_consumer_resume_where_the_group_left_off(
    topic, producer, make_consumer, unique
):
    group_id = unique("resumers")
    for number in range(30):
        await producer.send_and_wait(topic, f"{number}".encode(), partition=number % PARTITIONS)
    consumer = make_consumer(topic, group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        await consume(consumer, 30)
        await consumer.commit()
    finally:
        await consumer.stop()
    for number in range(30, 36):
        await producer.send_and_wait(topic, f"{number}".encode(), partition=number % PARTITIONS)
    consumer = make_consumer(topic, group_id=group_id)
    await consumer.start()
    try:
        resumed = await consume(consumer, 6)
    finally:
        await consumer.stop()
    assert sorted(int(m.value) for m in resumed) == list(range(30, 36))
