"""Committed offsets are where a group resumes: after its consumers restart, after the broker
restarts (SIGTERM, then a start on the same port and data: a deploy or a crash as far as a
client can tell), and while a member keeps consuming through the broker's restart."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from tests.support.kafka_clients import RebalanceLog, consume, end_offsets, until
from tests.support.kafka_wire import WireClient

# A restarted Kafka node needs a while before its coordinator has loaded __consumer_offsets
# and its partitions have leaders again; on a busy machine well over ten seconds.
AFTER_RESTART = 60.0
OFFSET_FETCH = 9
# What OffsetFetch answers while a just-started coordinator is not serving a group yet.
COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR = 14, 15, 16


async def group_coordinator_loaded(port: int, group_id: str, topic: str) -> None:
    """Wait until the broker serves the group's committed offsets again.

    A restarted Kafka answers OffsetFetch with COORDINATOR_LOAD_IN_PROGRESS, at the top level
    and without any partitions, until it has replayed __consumer_offsets (the dev broker
    loads its offsets before it listens). aiokafka 0.14, admin client and consumer alike,
    ignores that top-level error and takes it for "nothing committed": a consumer joining in
    that window resets to auto_offset_reset. So the tests wait for the load to finish."""
    request = {"group_id": group_id, "topics": [{"name": topic, "partition_indexes": [0]}]}
    async with asyncio.timeout(AFTER_RESTART):
        while True:
            wire = await WireClient.connect(port)
            try:
                answer = await wire.request(OFFSET_FETCH, 3, request)
            finally:
                await wire.close()
            if answer["error_code"] == 0:
                return
            assert answer["error_code"] in (
                COORDINATOR_LOAD_IN_PROGRESS,
                COORDINATOR_NOT_AVAILABLE,
                NOT_COORDINATOR,
            ), answer
            await asyncio.sleep(0.1)


async def committed_offsets(make_consumer, group_id: str, topic: str, partitions: int) -> dict:
    """What the group has committed, read the way a consumer starting up in it reads it. Not
    with aiokafka's admin client: right after a restart Kafka answers OffsetFetch with
    COORDINATOR_LOAD_IN_PROGRESS until it has loaded __consumer_offsets, and the admin client
    ignores that top-level error and returns no offsets, where the consumer waits and retries."""
    client = make_consumer(group_id=group_id, enable_auto_commit=False)
    await client.start()
    try:
        return {p: await client.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        await client.stop()


async def test_committed_offsets_survive_consumer_and_broker_restarts(
    kafka_broker, new_topic, unique, admin, producer, make_consumer
):
    topic, group_id = await new_topic("member-changes", 4), unique("read-model")
    for number in range(40):
        await producer.send_and_wait(topic, str(number).encode(), key=b"%d" % number)
    reader = make_consumer(topic, group_id=group_id, enable_auto_commit=False)
    await reader.start()
    try:
        await consume(reader, 40)
        await reader.commit()
    finally:
        await reader.stop()
    before = await committed_offsets(make_consumer, group_id, topic, 4)

    # The producer and the admin client stay up, as a running service's would, and reconnect.
    await kafka_broker.restart()
    async with asyncio.timeout(AFTER_RESTART):
        for number in range(40, 45):
            await producer.send_and_wait(topic, str(number).encode(), partition=1)
    await group_coordinator_loaded(kafka_broker.port, group_id, topic)
    after = await committed_offsets(make_consumer, group_id, topic, 4)
    reader = make_consumer(topic, group_id=group_id)
    await reader.start()
    try:
        resumed = await consume(reader, 5, within=AFTER_RESTART)
    finally:
        await reader.stop()
    [described] = await admin.describe_topics([topic])
    ends = await end_offsets(make_consumer, topic, 4)

    assert sum(before.values()) == 40
    assert after == before
    assert len(described["partitions"]) == 4
    assert sum(ends.values()) == 45
    assert sorted(int(m.value) for m in resumed) == list(range(40, 45))


async def test_a_member_consuming_through_a_broker_restart_resumes_from_its_committed_offsets(
    kafka_broker, new_topic, unique, producer, make_consumer
):
    topic, group_id = await new_topic("loyalty-ledger", 3), unique("ledger-projection")
    for number in range(30):
        await producer.send_and_wait(topic, b"%d" % number, partition=number % 3)
    # A service's session timeout (Kafka's default is 45 s) outlasts the broker's restart
    # from the moment the broker is back: the member then keeps its place in the group.
    member = make_consumer(group_id=group_id, enable_auto_commit=False, session_timeout_ms=10_000)
    rebalances = RebalanceLog()
    member.subscribe([topic], listener=rebalances)
    await member.start()
    received: list = []

    async def service_loop() -> None:
        # What a service's consumer does: poll, whatever the broker is going through. aiokafka
        # reconnects on its own (and would rejoin and refetch committed offsets if the group
        # rebalanced).
        while True:
            with contextlib.suppress(KafkaError):
                for messages in (await member.getmany(timeout_ms=100)).values():
                    received.extend(messages)

    try:
        first = await consume(member, 30)
        await member.commit()
        committed_before = await committed_offsets(make_consumer, group_id, topic, 3)
        polling = asyncio.create_task(service_loop())
        try:
            await kafka_broker.restart()
            async with asyncio.timeout(AFTER_RESTART):
                for number in range(30, 60):
                    await producer.send_and_wait(topic, b"%d" % number, partition=number % 3)
            await until(lambda: len(received) >= 30, within=AFTER_RESTART)
            # Anything re-read (an offset lost, or reset to the earliest) would come in right
            # behind the new messages: give it a moment to show up.
            await asyncio.sleep(1.0)
        finally:
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
        async with asyncio.timeout(AFTER_RESTART):
            while True:
                try:
                    await member.commit()
                    break
                except KafkaError:  # e.g. a rebalance still settling after the restart
                    for messages in (await member.getmany(timeout_ms=100)).values():
                        received.extend(messages)
        committed_after = await committed_offsets(make_consumer, group_id, topic, 3)
        events = list(rebalances.events)
    finally:
        await member.stop()

    assert sorted(int(m.value) for m in first) == list(range(30))
    assert committed_before == {0: 10, 1: 10, 2: 10}
    # Exactly the messages produced after the restart, each once and in order per partition.
    assert sorted(int(m.value) for m in received) == list(range(30, 60))
    for partition in range(3):
        of_partition = [m.offset for m in received if m.partition == partition]
        assert of_partition == list(range(10, 20))
    assert committed_after == {0: 20, 1: 20, 2: 20}
    # Both brokers keep the group's members and assignment across the restart (Kafka in
    # __consumer_offsets): no rebalance, so nothing consumed since the commit is handed out
    # again to the same member.
    everything = frozenset(TopicPartition(topic, p) for p in range(3))
    assert events == [("revoked", frozenset()), ("assigned", everything)]  # the first join only
