"""Consumer groups with aiokafka: the rebalances the talk's lessons are about."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiokafka.structs import TopicPartition

from .clients import RebalanceLog, consume, until

TOPIC = "order-events"
ALL = frozenset(TopicPartition(TOPIC, p) for p in range(6))


@pytest.fixture
def topic(broker) -> str:
    broker.topics.create(TOPIC, 6)
    return TOPIC


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


def covers_disjointly(group: list[Member]) -> bool:
    assignments = [m.log.assigned for m in group]
    return sum(len(a) for a in assignments) == len(ALL) and frozenset().union(*assignments) == ALL


async def test_a_group_of_three_gets_a_disjoint_cover_of_the_partitions(broker, members):
    trio = [await members("trio") for _ in range(3)]
    await until(lambda: covers_disjointly(trio) and all(m.log.assigned for m in trio))
    assert broker.groups.groups["trio"].state.value == "Stable"
    assert all(len(m.log.assigned) == 2 for m in trio)


async def test_a_member_leaving_makes_the_others_stop_then_resume_with_its_partitions(
    broker, members, producer
):
    trio = [await members("leavers") for _ in range(3)]
    await until(lambda: covers_disjointly(trio) and all(m.log.assigned for m in trio))
    staying, leaving = trio[:2], trio[2]
    before = [len(m.log.events) for m in staying]

    await leaving.stop()  # a dynamic member sends LeaveGroup
    await until(lambda: covers_disjointly(staying))

    for member, seen in zip(staying, before, strict=True):
        kinds = [kind for kind, _ in member.log.events[seen:]]
        assert kinds[:2] == ["revoked", "assigned"]  # eager: give everything up first
    for partition in range(6):
        await producer.send_and_wait(TOPIC, b"after-leave", partition=partition)
    await until(lambda: sum(len(m.received) for m in staying) == 6)


async def test_static_member_rejoining_within_session_timeout_keeps_its_partitions_without_rebalance(  # noqa: E501
    broker, members
):
    static = {"session_timeout_ms": 3000}
    first = await members("statics", group_instance_id="order-worker-1", **static)
    other = await members("statics", group_instance_id="order-worker-2", **static)
    await until(lambda: covers_disjointly([first, other]))
    group = broker.groups.groups["statics"]
    generation, rebalances = group.generation, group.rebalances
    owned, other_events = first.log.assigned, len(other.log.events)

    await first.stop()  # static members do not send LeaveGroup: a restart, not a departure
    restarted = await members("statics", group_instance_id="order-worker-1", **static)
    await until(lambda: restarted.log.assigned)

    assert restarted.log.assigned == owned
    assert (group.generation, group.rebalances) == (generation, rebalances)
    assert len(other.log.events) == other_events  # the other member never stopped
    assert group.state.value == "Stable"


async def test_static_member_gone_past_its_session_timeout_is_replaced_by_a_rebalance(
    broker, members
):
    static = {"session_timeout_ms": 800}
    gone = await members("statics-gone", group_instance_id="payment-worker-1", **static)
    other = await members("statics-gone", group_instance_id="payment-worker-2", **static)
    await until(lambda: covers_disjointly([gone, other]))

    await gone.stop()
    await until(lambda: other.log.assigned == ALL, within=5)
    assert broker.groups.groups["statics-gone"].static_members.keys() == {"payment-worker-2"}


async def test_committed_offsets_let_a_restarted_consumer_resume_where_the_group_left_off(
    broker, topic, producer, make_consumer
):
    for number in range(30):
        await producer.send_and_wait(topic, f"{number}".encode(), partition=number % 6)
    consumer = make_consumer(topic, group_id="resumers", enable_auto_commit=False)
    await consumer.start()
    try:
        await consume(consumer, 30)
        await consumer.commit()
    finally:
        await consumer.stop()
    for number in range(30, 36):
        await producer.send_and_wait(topic, f"{number}".encode(), partition=number % 6)
    consumer = make_consumer(topic, group_id="resumers")
    await consumer.start()
    try:
        resumed = await consume(consumer, 6)
    finally:
        await consumer.stop()
    assert sorted(int(m.value) for m in resumed) == list(range(30, 36))
