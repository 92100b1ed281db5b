"""The relay against both brokers: keyed order per aggregate, at-least-once across a crash,
retries through a broker outage, and a graceful stop that leaves nothing published unmarked."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
import sqlalchemy as sa

from infra.supervisor import free_port
from libs.events.envelope import Event, parse
from libs.events.relay import Relay
from tests.support.brokers import DevBrokerProcess
from tests.support.kafka_clients import until

from .conftest import TOPIC_PARTITIONS, OutboxDb

AGGREGATES = ["m-1", "m-2", "m-3", "m-4"]


class Crash(BaseException):
    """The process dies: not an Exception, so the relay's retry loop does not catch it."""


class CrashBeforeSecondMark(Relay):
    """Dies after the broker acknowledged its second batch, before marking it."""

    marks = 0

    async def mark_published(self, positions: list[int]) -> None:
        self.marks += 1
        if self.marks == 2:
            self.unmarked = positions
            raise Crash
        await super().mark_published(positions)


class SlowMark(Relay):
    """Takes its time marking the first batch, so a stop() lands while a batch is in flight."""

    in_flight: asyncio.Event

    async def mark_published(self, positions: list[int]) -> None:
        if not hasattr(self, "in_flight"):
            self.in_flight = asyncio.Event()
            self.in_flight.set()
            await asyncio.sleep(0.3)
        await super().mark_published(positions)


async def test_events_go_out_in_order_per_aggregate_keyed_by_aggregate_id(
    sqlite_outbox_db: OutboxDb, new_topic, bootstrap, read_topic, registry
):
    db = sqlite_outbox_db
    topic = await new_topic("members", TOPIC_PARTITIONS)
    written = db.write_interleaved(topic, AGGREGATES, each=10)
    relay = Relay(db.engine, db.outbox, bootstrap, batch_size=7, registry=registry)
    await relay.start()
    try:
        await until(lambda: _sample(registry, "shop_outbox_published_total") == len(written))
    finally:
        await relay.stop()
    received = await read_topic(topic)
    assert sorted(parse(r.value).id for r in received) == sorted(e.id for e in written)
    assert all(r.key == parse(r.value).aggregate_id.encode() for r in received)
    assert all(dict(r.headers)["type"] == b"MemberJoined" for r in received)
    assert _sequences(received) == {a: list(range(1, 11)) for a in AGGREGATES}
    assert {a: len(p) for a, p in _partitions(received).items()} == dict.fromkeys(AGGREGATES, 1)
    assert all(row.published_at is not None for row in db.rows())
    assert _sample(registry, "shop_outbox_backlog") == 0


async def test_notify_wakes_the_relay_long_before_its_poll_interval(
    sqlite_outbox_db: OutboxDb, new_topic, bootstrap, registry
):
    db = sqlite_outbox_db
    topic = await new_topic("members", TOPIC_PARTITIONS)
    db.write(topic, "m-warm-up")  # the producer's start-up is not what this measures
    relay = Relay(db.engine, db.outbox, bootstrap, poll_interval=30, registry=registry)
    await relay.start()
    try:
        await until(lambda: _sample(registry, "shop_outbox_published_total") == 1)
        await asyncio.sleep(0.1)  # the relay is now parked in its 30 s poll
        db.write(topic, "m-1")
        await asyncio.to_thread(relay.notify)  # as a sync route handler's thread would
        await until(lambda: _sample(registry, "shop_outbox_published_total") == 2, within=2)
    finally:
        await relay.stop()


async def test_each_batch_takes_one_transaction_and_the_backlog_is_not_recounted_per_batch(
    outbox_db: OutboxDb, new_topic, bootstrap, registry
):
    """The transaction that marks a batch reads the next one (on SQLite, one lock a batch
    instead of two), and the backlog gauges come from the rows read, not from counting the
    outbox after every batch (which made draining a large backlog quadratic)."""
    db = outbox_db
    topic = await new_topic("members", TOPIC_PARTITIONS)
    written = db.write_interleaved(topic, AGGREGATES, each=5)
    transactions, counts = [], []

    @sa.event.listens_for(db.engine, "begin")
    def began(conn) -> None:
        transactions.append(conn)

    @sa.event.listens_for(db.engine, "before_cursor_execute")
    def executed(conn, cursor, statement, parameters, context, executemany) -> None:
        if "count(" in statement.lower():
            counts.append(statement)

    relay = Relay(
        db.engine, db.outbox, bootstrap, batch_size=6, poll_interval=30, registry=registry
    )
    await relay.start()
    try:
        await until(lambda: _sample(registry, "shop_outbox_published_total") == len(written))
        await asyncio.sleep(0.2)  # the relay is now parked in its 30 s poll
        # One read, then a transaction per batch of 6, 6, 6 and 2, whose last read found none.
        assert len(transactions) == 1 + 4
        assert len(counts) == 1  # the first read saw a full batch; the rest were read off
        assert _sample(registry, "shop_outbox_backlog") == 0
        assert _sample(registry, "shop_outbox_oldest_age_seconds") == 0
        db.write(topic, "m-1")
        relay.notify()
        await until(lambda: _sample(registry, "shop_outbox_published_total") == len(written) + 1)
    finally:
        await relay.stop()
    assert all(row.published_at is not None for row in db.rows())


async def test_a_crash_between_send_and_mark_resends_exactly_the_unmarked_batch(
    sqlite_outbox_db: OutboxDb, new_topic, bootstrap, read_topic, registry
):
    db = sqlite_outbox_db
    topic = await new_topic("members", TOPIC_PARTITIONS)
    written = db.write_interleaved(topic, AGGREGATES, each=3)
    crashing = CrashBeforeSecondMark(db.engine, db.outbox, bootstrap, batch_size=5)
    await crashing.start()
    await until(lambda: crashing.marks == 2)
    with pytest.raises(Crash):
        await crashing.stop()  # the relay task has died; this only closes its producer
    unmarked = {row.event_id for row in db.rows() if row.position in crashing.unmarked}
    restarted = Relay(db.engine, db.outbox, bootstrap, batch_size=5, registry=registry)
    await restarted.start()
    try:
        await until(lambda: all(row.published_at for row in db.rows()))
    finally:
        await restarted.stop()
    received = [parse(r.value).id for r in await read_topic(topic)]
    duplicates = {event_id for event_id in received if received.count(event_id) > 1}
    assert set(received) == {e.id for e in written}
    assert len(unmarked) == 5
    assert duplicates == unmarked
    assert len(received) == len(written) + 5


async def test_a_broker_that_is_down_is_retried_and_published_to_once_it_is_up(
    sqlite_outbox_db: OutboxDb, tmp_path, registry
):
    db = sqlite_outbox_db
    port = free_port()  # nothing listens here yet
    written = db.write_interleaved("shop.members", AGGREGATES, each=5)
    relay = Relay(
        db.engine, db.outbox, f"127.0.0.1:{port}", backoff_initial=0.05, backoff_max=0.2,
        request_timeout_ms=2000, registry=registry,
    )  # fmt: skip
    broker = DevBrokerProcess(tmp_path / "broker", port=port)
    await relay.start()
    try:
        await until(lambda: db.rows()[0].attempts >= 2)
        head = db.rows()[0]
        assert head.published_at is None and "Error" in head.last_error
        assert _sample(registry, "shop_outbox_backlog") == len(written)
        assert (_sample(registry, "shop_outbox_oldest_age_seconds") or 0) > 0
        assert (_sample(registry, "shop_outbox_publish_failures_total") or 0) >= 2
        await asyncio.to_thread(broker.start)
        await until(lambda: _sample(registry, "shop_outbox_backlog") == 0, within=20)
    finally:
        await relay.stop()
        await asyncio.to_thread(broker.stop)
    assert all(row.published_at is not None for row in db.rows())
    assert all(row.attempts == 0 for row in db.rows()[1:])  # only the head row was tried


async def test_a_broker_outage_while_publishing_is_retried_losing_nothing_keeping_order(
    kafka_broker, sqlite_outbox_db: OutboxDb, new_topic, read_topic, registry
):
    db = sqlite_outbox_db
    topic = await new_topic("members", TOPIC_PARTITIONS)
    relay = Relay(
        db.engine, db.outbox, kafka_broker.bootstrap, backoff_initial=0.05, backoff_max=0.5,
        request_timeout_ms=1500, ack_timeout=0.5, registry=registry,
    )  # fmt: skip
    written: list[Event] = []

    async def write_steadily() -> None:
        for _ in range(60):
            written.append(await asyncio.to_thread(db.write, topic, AGGREGATES[len(written) % 4]))
            relay.notify()
            await asyncio.sleep(0.02)

    await relay.start()
    try:
        writing = asyncio.create_task(write_steadily())
        await until(lambda: (_sample(registry, "shop_outbox_published_total") or 0) >= 5)
        await _down_for(kafka_broker, seconds=2.0)  # longer than a send may wait: sends fail
        await writing
        await until(lambda: _sample(registry, "shop_outbox_backlog") == 0, within=30)
    finally:
        await relay.stop()
    received = await read_topic(topic)
    assert (_sample(registry, "shop_outbox_publish_failures_total") or 0) >= 1
    assert any(row.attempts and row.last_error for row in db.rows())
    assert {parse(r.value).id for r in received} == {e.id for e in written}
    assert _first_deliveries(received) == {a: list(range(1, 16)) for a in AGGREGATES}


async def test_stop_with_a_grace_period_abandons_a_stalled_batch_unmarked(
    sqlite_outbox_db: OutboxDb, tmp_path, registry
):
    db = sqlite_outbox_db
    broker = DevBrokerProcess(tmp_path / "broker")
    await asyncio.to_thread(broker.start)
    bootstrap = f"127.0.0.1:{broker.port}"
    options = {"request_timeout_ms": 1000, "ack_timeout": 0.3, "registry": registry}
    relay = Relay(db.engine, db.outbox, bootstrap, **options)
    try:
        await relay.start()
        db.write("shop.members", "m-1")
        await until(lambda: _sample(registry, "shop_outbox_published_total") == 1)
        await asyncio.to_thread(broker.stop)
        db.write("shop.members", "m-1")
        relay.notify()
        await until(lambda: db.rows()[1].attempts >= 1)  # the stall is on record
        loop = asyncio.get_running_loop()
        began = loop.time()
        await relay.stop(grace=0.5)
        stopping_took = loop.time() - began
        assert db.rows()[1].published_at is None
        assert "TimeoutError" in db.rows()[1].last_error
        await asyncio.to_thread(broker.start)
        again = Relay(db.engine, db.outbox, bootstrap, **{**options, "process": "again"})
        await again.start()
        try:
            await until(lambda: db.rows()[1].published_at is not None)
        finally:
            await again.stop()
    finally:
        await asyncio.to_thread(broker.stop)
    assert stopping_took < 3.0  # grace, then a bounded producer close; not the outage


async def test_stop_flushes_the_outbox_and_leaves_nothing_published_unmarked(
    sqlite_outbox_db: OutboxDb, new_topic, bootstrap, read_topic, registry
):
    db = sqlite_outbox_db
    topic = await new_topic("members", TOPIC_PARTITIONS)
    db.write_interleaved(topic, AGGREGATES, each=10)
    relay = SlowMark(db.engine, db.outbox, bootstrap, batch_size=8, registry=registry)
    await relay.start()
    await until(lambda: hasattr(relay, "in_flight"))
    await relay.stop()
    marked = {row.event_id for row in db.rows() if row.published_at is not None}
    on_broker = [parse(r.value).id for r in await read_topic(topic)]
    # The batch in flight, then every batch after it: a graceful stop flushes the outbox
    # (the last requests' events are not left for the next start).
    assert len(marked) == len(AGGREGATES) * 10
    assert sorted(on_broker) == sorted(marked)


async def _down_for(kafka_broker, seconds: float) -> None:
    """A broker outage: stopped, away for a while, started again on the same port and data."""
    await asyncio.to_thread(kafka_broker.server.stop)
    try:
        await asyncio.sleep(seconds)
    finally:
        await asyncio.to_thread(kafka_broker.server.start)


def _sample(registry, name: str, process: str = "") -> float | None:
    return registry.get_sample_value(name, {"process": process})


def _sequences(records) -> dict[str, list[int]]:
    by_aggregate: dict[str, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = parse(record.value)
        by_aggregate[event.aggregate_id].append(event.sequence)
    return dict(by_aggregate)


def _first_deliveries(records) -> dict[str, list[int]]:
    """Each aggregate's sequences in partition order, repeats (redeliveries) left out."""
    return {
        aggregate: list(dict.fromkeys(sequences))
        for aggregate, sequences in _sequences(records).items()
    }


def _partitions(records) -> dict[str, set[int]]:
    found: dict[str, set[int]] = defaultdict(set)
    for record in records:
        found[parse(record.value).aggregate_id].add(record.partition)
    return dict(found)
