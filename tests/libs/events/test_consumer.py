"""The consumer runner against each broker, through real sockets and the real aiokafka client:
every event applied once (duplicates, crashes, rebalances), poison events parked without
stopping their partition, offsets committed on a graceful stop, static membership."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from libs.events.consumer import AlreadyReplayed, ConsumerRunner, Handler, KeyedHandler
from libs.events.envelope import Event
from tests.support.kafka_clients import CLIENT_TIMINGS, end_offsets, until


class Crash(BaseException):
    """The process dies: not an error the runner handles, so nothing after it runs."""


@dataclass
class Running:
    runner: ConsumerRunner
    registry: CollectorRegistry

    def count(self, outcome: str) -> float:
        labels = {"group": self.runner.group_id, "outcome": outcome}
        return self.registry.get_sample_value("shop_consumer_events_total", labels) or 0.0

    def parked(self) -> float | None:
        labels = {"group": self.runner.group_id}
        return self.registry.get_sample_value("shop_consumer_parked_events", labels)

    def lag(self, tp: TopicPartition) -> float | None:
        labels = {"group": self.runner.group_id, "topic": tp.topic, "partition": str(tp.partition)}
        return self.registry.get_sample_value("shop_consumer_lag", labels)


@pytest.fixture
async def runners(bootstrap):
    started: list[Running] = []

    async def start(db, topic: str, group: str, handler: Handler | None = None, **options):
        registry = CollectorRegistry()
        runner = ConsumerRunner(
            bootstrap,
            group,
            [topic],
            db.engine,
            db.inbox,
            handler or db.apply,
            consumer_options={**CLIENT_TIMINGS, **options.pop("consumer_options", {})},
            registry=registry,
            **options,
        )
        await runner.start()
        started.append(Running(runner, registry))
        return started[-1]

    yield start
    for running in started:
        with contextlib.suppress(Exception, Crash):
            await running.runner.stop()


def stream(aggregates: list[str], each: int) -> list[Event]:
    """Each aggregate's sequences 1..each, interleaved as a busy system writes them."""
    return [
        Event("MemberJoined", "member", aggregate, sequence, {"sequence": sequence})
        for sequence in range(1, each + 1)
        for aggregate in aggregates
    ]


async def publish(producer, topic: str, events: list[Event]) -> None:
    for event in events:
        await producer.send_and_wait(topic, event.to_bytes(), key=event.key)


def sequences_by_aggregate(rows: list[sa.Row]) -> dict[str, list[int]]:
    applied: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        applied[row.aggregate_id].append(row.sequence)
    return dict(applied)


async def committed(admin, group: str) -> dict[int, int]:
    offsets = await admin.list_consumer_group_offsets(group)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def test_every_event_is_applied_once_even_when_published_twice(
    inbox_db, runners, new_topic, producer, unique
):
    topic = await new_topic("members", 3)
    events = stream(["m-1", "m-2", "m-3"], 2)
    await publish(producer, topic, events + events[:3])  # a relay resending after a crash
    running = await runners(inbox_db, topic, unique("views"))
    await until(lambda: running.count("processed") == 6 and running.count("duplicate") == 3)

    await publish(producer, topic, events)  # and everything once more, late
    await until(lambda: running.count("duplicate") == 9)

    rows = inbox_db.applied_rows()
    assert sorted(row.event_id for row in rows) == sorted(event.id for event in events)
    assert sequences_by_aggregate(rows) == {"m-1": [1, 2], "m-2": [1, 2], "m-3": [1, 2]}
    assert running.count("processed") == 6
    assert running.count("parked") == 0


async def test_a_crash_after_the_db_commit_redelivers_and_the_inbox_applies_once(
    sqlite_inbox_db, runners, new_topic, producer, admin, unique
):
    db, topic, group = sqlite_inbox_db, await new_topic("orders", 1), unique("crashers")
    first = await runners(db, topic, group, lambda conn, event: db.apply(conn, event, "first"))

    async def dies_before_committing_offsets(consumer, offsets) -> None:
        raise Crash

    first.runner._commit = dies_before_committing_offsets  # before any event arrives
    await publish(producer, topic, stream(["o-1"], 10))
    await until(lambda: first.runner.task.done())
    with pytest.raises(Crash):
        await first.runner.stop()
    assert (await committed(admin, group)).get(0, 0) == 0
    applied = len(db.applied_rows())
    assert 0 < applied <= 10  # the batches the DB committed before the process died

    second = await runners(db, topic, group)
    await until(lambda: second.count("duplicate") == applied)
    await until(lambda: second.count("processed") == 10 - applied)
    rows = db.applied_rows()
    assert [row.sequence for row in rows] == list(range(1, 11))
    assert [row.by for row in rows] == ["first"] * applied + [""] * (10 - applied)
    assert (await committed(admin, group))[0] == 10


async def test_a_crash_inside_a_batch_rolls_the_whole_batch_back_and_it_is_applied_once_later(
    sqlite_inbox_db, runners, new_topic, producer, admin, unique
):
    db, topic, group = sqlite_inbox_db, await new_topic("orders", 1), unique("crashers")
    await publish(producer, topic, stream(["o-1"], 10))

    def dies_at_the_eighth(conn: sa.Connection, event: Event) -> None:
        if event.sequence == 8:
            raise Crash
        db.apply(conn, event, by="first")

    first = await runners(db, topic, group, dies_at_the_eighth)
    await until(lambda: first.runner.task.done())
    with pytest.raises(Crash):
        await first.runner.stop()
    kept = (await committed(admin, group)).get(0, 0)
    # One transaction per partition batch: what the dying batch applied is rolled back with it.
    assert [row.sequence for row in db.applied_rows()] == list(range(1, kept + 1))

    second = await runners(db, topic, group)
    await until(lambda: second.count("processed") == 10 - kept)
    rows = db.applied_rows()
    assert [row.sequence for row in rows] == list(range(1, 11))
    assert [row.by for row in rows] == ["first"] * kept + [""] * (10 - kept)
    assert (await committed(admin, group))[0] == 10


async def test_poison_events_are_parked_and_the_rest_of_their_partition_still_applies(
    sqlite_inbox_db, runners, new_topic, producer, admin, unique
):
    db, topic, group = sqlite_inbox_db, await new_topic("payments", 1), unique("poisoned")
    first, refused, last = stream(["p-1"], 3)

    def refuses_the_second(conn: sa.Connection, event: Event) -> None:
        db.apply(conn, event)  # rolled back with the transaction when it raises below
        if event.sequence == 2:
            raise ValueError("amount is negative")

    await publish(producer, topic, [first])
    await producer.send_and_wait(topic, b"\x00 not json", key=b"p-1")
    await publish(producer, topic, [refused, last])
    running = await runners(db, topic, group, refuses_the_second)
    await until(lambda: running.count("processed") == 2 and running.count("parked") == 2)
    await until(lambda: running.parked() == 2)

    assert [row.event_id for row in db.applied_rows()] == [first.id, last.id]
    with db.engine.connect() as conn:
        parked = db.inbox.parked_events(conn, [group])
    assert [(p.offset, p.key) for p in parked] == [(1, b"p-1"), (2, b"p-1")]
    assert parked[0].value == b"\x00 not json"
    assert parked[0].reason.startswith("malformed: not JSON")
    assert parked[1].value == refused.to_bytes()
    assert parked[1].reason == "handler failed: ValueError: amount is negative"
    with db.engine.connect() as conn:
        assert not db.inbox.is_processed(conn, group, refused.id)  # a replay may still apply it
    assert (await committed(admin, group)) == {0: 4}


async def test_a_graceful_stop_commits_offsets_and_the_next_runner_starts_after_them(
    sqlite_inbox_db, runners, new_topic, producer, admin, make_consumer, unique
):
    db, topic, group = sqlite_inbox_db, await new_topic("members", 2), unique("stoppers")
    events = stream(["m-1", "m-2", "m-3", "m-4"], 3)
    await publish(producer, topic, events)
    first = await runners(db, topic, group)
    await until(lambda: first.count("processed") == 12)
    tps = [TopicPartition(topic, p) for p in range(2)]
    await until(lambda: all(first.lag(tp) == 0 for tp in tps))
    await first.runner.stop()

    ends = await end_offsets(make_consumer, topic, 2)
    assert await committed(admin, group) == ends
    later = stream(["m-5"], 2)
    await publish(producer, topic, later)
    second = await runners(db, topic, group)
    await until(lambda: second.count("processed") == 2)
    await asyncio.sleep(0.5)  # anything redelivered would arrive in this window
    assert second.count("processed") == 2
    assert second.count("duplicate") == 0
    assert len(db.applied_rows()) == 14


async def test_per_key_order_holds_when_a_member_leaves_mid_stream(
    sqlite_inbox_db, runners, new_topic, producer, unique
):
    db, topic, group = sqlite_inbox_db, await new_topic("orders", 4), unique("ordered")
    aggregates = [f"o-{n}" for n in range(8)]
    events = stream(aggregates, 30)

    def slow(name: str) -> Handler:
        def handle(conn: sa.Connection, event: Event) -> None:
            time.sleep(0.002)  # work takes time, so the leave lands mid-stream
            db.apply(conn, event, by=name)

        return handle

    staying = await runners(db, topic, group, slow("staying"), max_records=5)
    leaving = await runners(db, topic, group, slow("leaving"), max_records=5)
    await until(lambda: bool(staying.runner.assignment()) and bool(leaving.runner.assignment()))
    # Published once both own partitions: the leaving member then surely has events to apply.
    await publish(producer, topic, events[:120])
    await until(lambda: leaving.count("processed") >= 10, within=20)
    await leaving.runner.stop()
    await publish(producer, topic, events[120:])
    await until(lambda: staying.count("processed") + leaving.count("processed") == 240, within=30)

    rows = db.applied_rows()
    assert len(rows) == 240
    assert sequences_by_aggregate(rows) == {a: list(range(1, 31)) for a in aggregates}
    handed_over = {row.aggregate_id for row in rows if row.by == "leaving"}
    assert handed_over  # the leaving member owned partitions
    # and their later events were applied by the member that stayed
    assert any(row.by == "staying" for row in rows if row.aggregate_id in handed_over)


async def test_a_static_member_restarting_keeps_its_partitions_without_a_rebalance(
    sqlite_inbox_db, runners, new_topic, producer, unique
):
    db, topic, group = sqlite_inbox_db, await new_topic("payments", 4), unique("statics")
    static = {"consumer_options": {"session_timeout_ms": 3000}}
    first = await runners(db, topic, group, group_instance_id="payment-worker-1", **static)
    other = await runners(db, topic, group, group_instance_id="payment-worker-2", **static)

    def covered(members: list[Running]) -> bool:
        owned = [m.runner.assignment() for m in members]
        return all(owned) and sum(map(len, owned)) == 4 and len(frozenset().union(*owned)) == 4

    await until(lambda: covered([first, other]))
    owned, other_assignments = first.runner.assignment(), other.runner.assignments

    await first.runner.stop()  # static: no LeaveGroup, a restart rather than a departure
    restarted = await runners(db, topic, group, group_instance_id="payment-worker-1", **static)
    await until(lambda: bool(restarted.runner.assignment()))
    events = stream([f"p-{n}" for n in range(8)], 2)
    await publish(producer, topic, events)
    await until(lambda: restarted.count("processed") + other.count("processed") == 16)

    assert restarted.runner.assignment() == owned
    assert other.runner.assignments == other_assignments  # never revoked and reassigned
    assert restarted.runner.assignments == 1
    assert restarted.count("processed") > 0 and other.count("processed") > 0
    assert len(db.applied_rows()) == 16


async def test_a_database_outage_is_retried_in_order_not_parked(
    sqlite_inbox_db, runners, new_topic, producer, unique
):
    db, topic = sqlite_inbox_db, await new_topic("members", 1)
    outages = [1]

    def flaky(conn: sa.Connection, event: Event) -> None:
        if event.sequence == 2 and outages:
            outages.pop()
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        db.apply(conn, event)

    await publish(producer, topic, stream(["m-1"], 3))
    running = await runners(db, topic, unique("flaky"), flaky, backoff_initial=0.05)
    await until(lambda: running.count("processed") == 3)

    assert [row.sequence for row in db.applied_rows()] == [1, 2, 3]
    assert running.count("parked") == 0 and outages == []


async def test_a_keyed_handler_dedupes_by_its_own_key_parks_what_it_refuses_and_replays(
    sqlite_inbox_db, runners, producer, admin, unique
):
    """A handler idempotent by a key of its own effect: it runs its own transaction, the runner
    writes no inbox row, counts what it says it skipped as duplicate, parks what it raises on,
    and replays a parked event once. The runner also creates its missing topic first."""
    db, topic, group = sqlite_inbox_db, unique("keyed"), unique("keyed")
    seen: set[tuple[str, int]] = set()
    refuse = {"p-2"}

    def by_aggregate_and_sequence(event: Event) -> bool:
        if event.aggregate_id in refuse:
            raise ValueError("not yet")
        key = (event.aggregate_id, event.sequence)
        if key in seen:
            return False
        with db.engine.begin() as conn:
            db.apply(conn, event)
        seen.add(key)
        return True

    running = await runners(
        db, topic, group, KeyedHandler(by_aggregate_and_sequence), topic_partitions=2
    )
    await until(lambda: bool(running.runner.assignment()))
    assert len(running.runner.assignment()) == 2  # created with the partitions asked for
    one, again, refused = stream(["p-1"], 1) + stream(["p-1"], 1) + stream(["p-2"], 1)
    await publish(producer, topic, [one, again, refused])
    await until(lambda: running.count("parked") == 1 and running.count("duplicate") == 1)
    assert running.count("processed") == 1
    await until(lambda: running.parked() == 1)
    with db.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(db.inbox.tables.inbox)) == 0
        (parked,) = db.inbox.parked_events(conn, [group])

    refuse.clear()
    assert await running.runner.replay(parked.id) == "processed"
    assert running.parked() == 0  # replayed: no longer waiting
    with pytest.raises(AlreadyReplayed):
        await running.runner.replay(parked.id)
    assert [row.aggregate_id for row in db.applied_rows()] == ["p-1", "p-2"]


async def test_a_batch_is_applied_without_a_savepoint_per_event_unless_a_handler_refuses_one(
    inbox_db, runners, new_topic, producer, unique
):
    """Savepoints cost two statements per event (two round trips each on PostgreSQL): a
    batch runs without them, and only a batch with a refused event runs again with them, so
    that event alone is parked and the others still apply."""
    db, topic = inbox_db, await new_topic("members", 1)
    statements: list[str] = []

    @sa.event.listens_for(db.engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    events = stream(["m-1"], 10)
    await publish(producer, topic, events)
    running = await runners(db, topic, unique("fast"))
    await until(lambda: running.count("processed") == 10)
    savepoints = sum(statement.startswith("SAVEPOINT") for statement in statements)

    def refuses_the_second(conn: sa.Connection, event: Event) -> None:
        db.apply(conn, event)  # rolled back with its attempt when it raises below
        if event.sequence == 2:
            raise ValueError("refused")

    running = await runners(db, topic, unique("refusing"), refuses_the_second)
    await until(lambda: running.count("processed") + running.count("parked") == 10)
    assert savepoints == 0
    assert any(statement.startswith("SAVEPOINT") for statement in statements)
    assert running.count("parked") == 1
    assert [row.event_id for row in db.applied_rows()] == [e.id for e in events] + [
        e.id for e in events if e.sequence != 2
    ]
