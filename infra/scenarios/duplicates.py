"""`shop scenario duplicates`: a sender that dies after sending but before recording how far
it got sends again (the talk's "duplicate messages" lesson), so consumers need a unique key.

The relay is killed after the broker acknowledged a batch and before it marked the rows
published; a new relay on the same outbox sends that batch again. Two consumers read the
topic: one applies every message it receives, the other is a ConsumerRunner whose inbox key
(group, event id) commits with the effect. Both effects are rows in a table, counted after."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from infra.scenarios import until
from infra.scenarios.table import print_table
from libs.db import make_engine
from libs.events.consumer import ConsumerRunner
from libs.events.envelope import Event, parse
from libs.events.inbox import Inbox, inbox_tables
from libs.events.outbox import Outbox, outbox_table
from libs.events.relay import Relay
from libs.events.topics import create_topics

DESCRIPTION = (
    "a relay killed between the broker's acknowledgement and marking its rows sends the batch "
    "again: a consumer without an inbox applies it twice, the inbox applies it once"
)

ORDERS = 8
STATUSES = ("OrderPlaced", "OrderPaid", "OrderPacked", "OrderShipped", "OrderDelivered")
PARTITIONS = 3
BATCH = 10
KILLED_AT_BATCH = 2  # the first batch is marked, so only the killed one comes back
WITHIN = 30.0  # a bound on each wait, far above a normal run, so the scenario always ends
GROUP_TIMINGS = {"session_timeout_ms": 10_000, "heartbeat_interval_ms": 100}


class Killed(BaseException):
    """The relay's process dies: not an Exception, so the relay's retry loop cannot catch it."""


class KilledBeforeMarking(Relay):
    """Dies once the broker acknowledged batch KILLED_AT_BATCH, before marking its rows."""

    marks = 0
    unmarked: list[int] | None = None

    async def mark_published(self, positions: list[int]) -> None:
        self.marks += 1
        if self.marks == KILLED_AT_BATCH:
            self.unmarked = positions
            raise Killed
        await super().mark_published(positions)


@dataclass(frozen=True)
class Db:
    engine: sa.Engine
    outbox: Outbox
    inbox: Inbox
    applications: sa.Table  # the effect: one row per application of an event


@dataclass(frozen=True)
class Applied:
    """What one consumer did: messages it was handed, and its effect rows per event id."""

    delivered: int
    duplicates_delivered: int
    per_event: Counter[str]

    @property
    def applied(self) -> int:
        return sum(self.per_event.values())

    @property
    def double_applications(self) -> int:
        return sum(count - 1 for count in self.per_event.values() if count > 1)


def open_db(url: str) -> Db:
    metadata = sa.MetaData()
    applications = sa.Table(
        "applications",
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(50), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),  # no unique key: on purpose
    )
    outbox = Outbox(outbox_table(metadata))
    inbox = Inbox(inbox_tables(metadata))
    engine = make_engine(url)
    metadata.create_all(engine)
    return Db(engine, outbox, inbox, applications)


def commit_events(db: Db, topic: str) -> list[Event]:
    """Every order's statuses, interleaved across orders, each in its own unit of work."""
    events = []
    for status in STATUSES:
        for number in range(1, ORDERS + 1):
            order = f"order-{number:03d}"
            with db.engine.begin() as conn:
                sequence = db.outbox.next_sequence(conn, "order", order)
                event = Event(status, "order", order, sequence, {"status": status})
                db.outbox.add(conn, topic, event)
            events.append(event)
    return events


async def publish_with_a_kill(db: Db, bootstrap: str) -> int:
    """The killed relay, then a new one on the same outbox; returns how many rows the killed
    one left unmarked (what the broker already had)."""
    killed = KilledBeforeMarking(
        db.engine, db.outbox, bootstrap, batch_size=BATCH, registry=CollectorRegistry()
    )
    await killed.start()
    try:
        await until(lambda: killed.unmarked is not None)
    finally:
        with contextlib.suppress(Killed):  # its task has died: this only closes its producer
            await killed.stop()
    restarted = Relay(
        db.engine, db.outbox, bootstrap, batch_size=BATCH, registry=CollectorRegistry()
    )
    await restarted.start()
    try:
        await until(lambda: _unpublished(db) == 0)
    finally:
        await restarted.stop()
    return len(killed.unmarked or [])


def _unpublished(db: Db) -> int:
    table = db.outbox.table
    with db.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(table.c.published_at.is_(None))
        return int(conn.scalar(query) or 0)


async def messages_on(bootstrap: str, topic: str) -> int:
    """The topic's end offsets, summed: every message the broker holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await consumer.stop()
    return sum(ends.values())


async def apply_without_inbox(db: Db, bootstrap: str, topic: str, messages: int) -> Applied:
    """Applies every message it is handed: no memory of what it applied before."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        ids: list[str] = []
        async with asyncio.timeout(WITHIN):
            while len(ids) < messages:
                batch = await consumer.getmany(timeout_ms=100)
                ids.extend(parse(r.value).id for records in batch.values() for r in records)
    finally:
        await consumer.stop()
    await asyncio.to_thread(_record_all, db, "no-inbox", ids)
    return Applied(len(ids), len(ids) - len(set(ids)), _effects(db, "no-inbox"))


def _record_all(db: Db, consumer: str, ids: list[str]) -> None:
    rows = [{"consumer": consumer, "event_id": event_id} for event_id in ids]
    with db.engine.begin() as conn:
        conn.execute(db.applications.insert(), rows)


async def apply_with_inbox(db: Db, bootstrap: str, topic: str, messages: int) -> Applied:
    registry = CollectorRegistry()  # this run's own counters, not the process's
    group = f"{topic}.inbox"

    def handle(conn: sa.Connection, event: Event) -> None:
        # The effect commits in the inbox's transaction: both or neither.
        conn.execute(db.applications.insert().values(consumer="inbox", event_id=event.id))

    def handled(outcome: str) -> int:
        sample = {"group": group, "outcome": outcome}
        return int(registry.get_sample_value("shop_consumer_events_total", sample) or 0)

    runner = ConsumerRunner(
        bootstrap, group, [topic], db.engine, db.inbox, handle,
        consumer_options=GROUP_TIMINGS, registry=registry,
    )  # fmt: skip
    await runner.start()
    try:
        await until(lambda: handled("processed") + handled("duplicate") >= messages)
    finally:
        await runner.stop()
    return Applied(
        handled("processed") + handled("duplicate"), handled("duplicate"), _effects(db, "inbox")
    )


def _effects(db: Db, consumer: str) -> Counter[str]:
    table = db.applications
    with db.engine.connect() as conn:
        query = sa.select(table.c.event_id).where(table.c.consumer == consumer)
        return Counter(conn.scalars(query))


def report(committed: int, messages: int, plain: Applied, inboxed: Applied) -> None:
    def both(figure: Callable[[Applied], int]) -> list[str]:
        return [str(figure(plain)), str(figure(inboxed))]

    print_table(
        ["", "no inbox (applies every message)", "inbox (ConsumerRunner)"],
        [
            ["events committed", *[str(committed)] * 2],
            ["messages on the topic", *[str(messages)] * 2],
            ["messages delivered", *both(lambda run: run.delivered)],
            ["duplicates delivered", *both(lambda run: run.duplicates_delivered)],
            ["events applied (effect rows)", *both(lambda run: run.applied)],
            ["distinct events applied", *both(lambda run: len(run.per_event))],
            ["double applications", *both(lambda run: run.double_applications)],
        ],
    )


def verdict(committed: int, plain: Applied, inboxed: Applied) -> int:
    problems = []
    if plain.applied <= committed:
        problems.append(f"without an inbox {plain.applied} applications for {committed} events")
    if inboxed.applied != committed or len(inboxed.per_event) != committed:
        problems.append(f"with the inbox {inboxed.applied} applications for {committed} events")
    if not problems:
        print(
            "verdict: PASS: the resent batch reached both consumers; without an inbox it was "
            "applied twice, the inbox applied every event exactly once"
        )
        return 0
    print(f"verdict: FAIL: {'; '.join(problems)}")
    return 1


async def run(bootstrap: str) -> int:
    topic = f"scenario.duplicates-{uuid.uuid4().hex[:8]}"  # unique on a long-lived Kafka
    await create_topics(bootstrap, [topic], PARTITIONS)
    with tempfile.TemporaryDirectory(prefix="scenario-duplicates-") as workdir:
        db = open_db(f"sqlite:///{Path(workdir) / 'shop.db'}")
        try:
            events = commit_events(db, topic)
            resent = await publish_with_a_kill(db, bootstrap)
            print(
                f"relay killed after the broker acknowledged batch {KILLED_AT_BATCH} "
                f"({resent} events) and before marking it; a new relay sent it again"
            )
            messages = await messages_on(bootstrap, topic)
            plain, inboxed = await asyncio.gather(
                apply_without_inbox(db, bootstrap, topic, messages),
                apply_with_inbox(db, bootstrap, topic, messages),
            )
        finally:
            db.engine.dispose()
    report(len(events), messages, plain, inboxed)
    return verdict(len(events), plain, inboxed)
