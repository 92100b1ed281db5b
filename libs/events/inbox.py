"""The inbox and the parked events of a consumer group, in the consumer's own database.

The inbox makes a consumer idempotent: Kafka delivers at least once (the relay resends after a
crash, a consumer re-reads what it had not committed), so every event's id is written in the
same transaction as its effect, under a unique (consumer group, event id) key. A redelivered
event finds its row there and is skipped; its effect cannot be applied twice.

Parked events are the ones a consumer could not apply: bytes that are not an envelope, or an
envelope its handler refused. Keeping them (with the raw bytes and the reason) lets the
partition move on, instead of one poison event stopping every later event behind it, and
lets an operator replay them once the cause is fixed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from libs.db.types import ID

_KEYS = ("consumer_group", "event_id")
_PLACES = ("consumer_group", "topic", "partition", "offset")


@dataclass(frozen=True)
class InboxTables:
    inbox: sa.Table
    parked: sa.Table


def inbox_tables(
    metadata: sa.MetaData, *, inbox_name: str = "event_inbox", parked_name: str = "parked_events"
) -> InboxTables:
    """The two tables on a process's own MetaData (its migrations create them)."""
    inbox = sa.Table(
        inbox_name,
        metadata,
        sa.Column("consumer_group", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        # The processed-event key: per group, since every group applies every event once.
        sa.PrimaryKeyConstraint(*_KEYS, name=f"{inbox_name}_processed"),
    )
    parked = sa.Table(
        parked_name,
        metadata,
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("consumer_group", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        # A poison message redelivered (its offset was not committed yet) is parked once.
        sa.UniqueConstraint(*_PLACES, name=f"{parked_name}_place"),
    )
    return InboxTables(inbox, parked)


@dataclass(frozen=True)
class ParkedEvent:
    id: int
    consumer_group: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    parked_at: datetime
    replayed_at: datetime | None


class Inbox:
    """Reads and writes of the two tables; every method runs in the caller's transaction."""

    def __init__(self, tables: InboxTables) -> None:
        self.tables = tables

    def record(
        self,
        conn: sa.Connection,
        group: str,
        event_id: str,
        topic: str,
        partition: int,
        offset: int,
    ) -> bool:
        """Writes the processed-event key; False when the group had already processed it."""
        values = {
            "consumer_group": group,
            "event_id": event_id,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "processed_at": _now(),
        }
        return _insert_unless_present(conn, self.tables.inbox, values, _KEYS)

    def is_processed(self, conn: sa.Connection, group: str, event_id: str) -> bool:
        inbox = self.tables.inbox
        query = sa.select(sa.literal(1)).where(
            inbox.c.consumer_group == group, inbox.c.event_id == event_id
        )
        return conn.execute(query).first() is not None

    def park(
        self,
        conn: sa.Connection,
        group: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
    ) -> bool:
        """Keeps a message the group could not apply; False when it was already parked."""
        values = {
            "consumer_group": group,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key": key,
            "value": value,
            "reason": reason,
            "parked_at": _now(),
        }
        return _insert_unless_present(conn, self.tables.parked, values, _PLACES)

    def parked_events(
        self,
        conn: sa.Connection,
        groups: list[str] | None = None,
        *,
        replayed: bool | None = None,
        limit: int = 100,
    ) -> list[ParkedEvent]:
        """Oldest first; `replayed` True/False keeps only replayed/waiting ones."""
        parked = self.tables.parked
        query = sa.select(parked).order_by(parked.c.id).limit(limit)
        if groups is not None:
            query = query.where(parked.c.consumer_group.in_(groups))
        if replayed is not None:
            column = parked.c.replayed_at
            query = query.where(column.is_not(None) if replayed else column.is_(None))
        return [_parked(row) for row in conn.execute(query).mappings()]

    def waiting_count(self, conn: sa.Connection, group: str) -> int:
        """Parked events of this group not replayed yet."""
        parked = self.tables.parked
        query = sa.select(sa.func.count()).where(
            parked.c.consumer_group == group, parked.c.replayed_at.is_(None)
        )
        return conn.execute(query).scalar_one()

    def parked_event(self, conn: sa.Connection, parked_id: int) -> ParkedEvent | None:
        parked = self.tables.parked
        row = conn.execute(sa.select(parked).where(parked.c.id == parked_id)).mappings().first()
        return _parked(row) if row is not None else None

    def mark_replayed(self, conn: sa.Connection, parked_id: int) -> bool:
        """False when it was replayed already. The condition is in the UPDATE itself, so two
        concurrent replays of one event cannot both succeed."""
        parked = self.tables.parked
        update = (
            parked.update()
            .where(parked.c.id == parked_id, parked.c.replayed_at.is_(None))
            .values(replayed_at=_now())
        )
        return conn.execute(update).rowcount == 1


def _insert_unless_present(
    conn: sa.Connection, table: sa.Table, values: dict[str, Any], keys: tuple[str, ...]
) -> bool:
    # ON CONFLICT DO NOTHING rather than catching IntegrityError: on PostgreSQL a failed
    # INSERT aborts the whole transaction, and the consumer's transaction must go on. It also
    # waits for a concurrent, uncommitted insert of the same key (two members of a group
    # during a rebalance) and then reports the duplicate, instead of both applying it.
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(table).values(values).on_conflict_do_nothing(index_elements=keys)
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT here.
        return conn.execute(statement.returning(table.c[keys[0]])).first() is not None
    try:
        with conn.begin_nested():
            conn.execute(table.insert().values(values))
    except sa.exc.IntegrityError:
        return False
    return True


def _parked(row: sa.RowMapping) -> ParkedEvent:
    return ParkedEvent(**{name: row[name] for name in ParkedEvent.__dataclass_fields__})


def _now() -> datetime:
    return datetime.now(UTC)
