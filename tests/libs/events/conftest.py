"""Fixtures for the events tests: an outbox or an inbox on a real database (SQLite file and
PostgreSQL), events written the way a unit of work writes them, and reads of a whole topic."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from libs.db import make_engine
from libs.events.envelope import Event
from libs.events.inbox import Inbox, inbox_tables
from libs.events.outbox import Outbox, outbox_table
from tests.support.kafka_clients import consume, end_offsets

TOPIC_PARTITIONS = 3


@dataclass
class OutboxDb:
    """A database with an outbox and one business table, `members`, for the state change an
    event announces."""

    engine: sa.Engine
    table: sa.Table
    members: sa.Table
    outbox: Outbox

    def write(self, topic: str, aggregate_id: str, *, commit: bool = True) -> Event:
        """One unit of work: a state change and its event, committed or rolled back."""
        with self.engine.connect() as conn:
            tx = conn.begin()
            conn.execute(self.members.insert().values(member_id=aggregate_id))
            sequence = self.outbox.next_sequence(conn, "member", aggregate_id)
            event = Event("MemberJoined", "member", aggregate_id, sequence, {"n": sequence})
            self.outbox.add(conn, topic, event)
            if commit:
                tx.commit()
            else:
                tx.rollback()
        return event

    def write_interleaved(self, topic: str, aggregates: list[str], each: int) -> list[Event]:
        return [self.write(topic, a) for _ in range(each) for a in aggregates]

    def rows(self) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(self.table).order_by(self.table.c.position)))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """The embedded default (a SQLite file) and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """The embedded default only, for the tests that vary the broker, not the DB."""
    return f"sqlite:///{tmp_path / 'events.db'}"


@pytest.fixture
def outbox_db(database_url) -> Iterator[OutboxDb]:
    yield from _open_outbox_db(database_url)


@pytest.fixture
def sqlite_outbox_db(sqlite_url) -> Iterator[OutboxDb]:
    yield from _open_outbox_db(sqlite_url)


def _open_outbox_db(url: str) -> Iterator[OutboxDb]:
    metadata = sa.MetaData()
    table = outbox_table(metadata)
    members = sa.Table(
        "members",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("member_id", sa.String(50), nullable=False),
    )
    with _created(url, metadata) as engine:
        yield OutboxDb(engine, table, members, Outbox(table))


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def read_topic(make_consumer) -> Callable:
    """Everything the topic holds, from the start of every partition."""

    async def read(topic: str) -> list[ConsumerRecord]:
        ends = await end_offsets(make_consumer, topic, TOPIC_PARTITIONS)
        consumer: AIOKafkaConsumer = make_consumer(topic)
        await consumer.start()
        try:
            return await consume(consumer, sum(ends.values()))
        finally:
            await consumer.stop()

    return read


# The inbox and consumer-runner tests: an inbox on a real database (SQLite file and
# PostgreSQL) and one business table, `applied`, for the effect of each handled event.


@dataclass
class InboxDb:
    engine: sa.Engine
    inbox: Inbox
    applied: sa.Table

    def apply(self, conn: sa.Connection, event: Event, by: str = "") -> None:
        """A handler's effect: one row per event applied, in apply order."""
        row = {"event_id": event.id, "aggregate_id": event.aggregate_id, "by": by}
        conn.execute(self.applied.insert().values(sequence=event.sequence, **row))

    def applied_rows(self) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(self.applied).order_by(self.applied.c.position)))


@pytest.fixture
def inbox_db(database_url) -> Iterator[InboxDb]:
    yield from _open_inbox_db(database_url)


@pytest.fixture
def sqlite_inbox_db(sqlite_url) -> Iterator[InboxDb]:
    yield from _open_inbox_db(sqlite_url)


def _open_inbox_db(url: str) -> Iterator[InboxDb]:
    metadata = sa.MetaData()
    tables = inbox_tables(metadata)
    applied = sa.Table(
        "applied",
        metadata,
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("aggregate_id", sa.String(200), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("by", sa.String(50), nullable=False),
    )
    with _created(url, metadata) as engine:
        yield InboxDb(engine, Inbox(tables), applied)


@contextlib.contextmanager
def _created(url: str, metadata: sa.MetaData) -> Iterator[sa.Engine]:
    """An engine on `url` with `metadata`'s tables created, disposed of afterwards."""
    engine = make_engine(url)
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
