"""The transactional outbox: an event is a row written in the same transaction as the state
change it announces, so the two commit or roll back together. Publishing to Kafka from the
request path instead would announce changes that then roll back, or lose events whose
commit succeeded while the broker was away. The relay (libs/events/relay.py) publishes the
committed rows afterwards, in `position` order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from libs.db.types import ID  # BIGINT: an outbox outlives 2**31 events
from libs.events.envelope import Event


def outbox_table(metadata: sa.MetaData, name: str = "event_outbox") -> sa.Table:
    """The outbox table on a process's own MetaData (its migrations create it)."""
    return sa.Table(
        name,
        metadata,
        # The publish order. A commit can land after a later position is already published
        # (positions are handed out at INSERT, not at COMMIT), which is why the relay asks
        # for `published_at IS NULL` and never keeps a high-water mark that would skip it.
        sa.Column("position", ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("aggregate_type", sa.String(200), nullable=False),
        sa.Column("aggregate_id", sa.String(200), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        # Two transactions that both read max(sequence) cannot both commit the next one.
        sa.UniqueConstraint(
            "aggregate_type", "aggregate_id", "sequence", name=f"{name}_aggregate_sequence"
        ),
        # The relay's every poll asks for the unpublished rows: keep that lookup off the
        # ever-growing published history.
        sa.Index(
            f"{name}_unpublished",
            "position",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        ),
    )


@dataclass(frozen=True)
class PendingEvent:
    """A committed, not yet published outbox row: what the relay sends."""

    position: int
    event_id: str
    topic: str
    aggregate_id: str
    type: str
    payload: bytes
    created_at: datetime


class Outbox:
    """The outbox table's SQL. Writers call `add` (and `next_sequence`) inside their own
    transaction; the relay calls the rest, each in a short transaction of its own."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table

    def add(self, conn: sa.Connection, topic: str, event: Event) -> None:
        """Queue `event` for `topic` in the transaction `conn` is in: it is published only if
        that transaction commits."""
        conn.execute(self.insert(topic, event))

    def insert(self, topic: str, event: Event) -> sa.Insert:
        """The row `add` writes, for a caller that runs statements its own way (an extracted
        service's data door picks the DB: libs/extraction)."""
        return self.table.insert().values(
            event_id=event.id,
            topic=topic,
            aggregate_type=event.aggregate_type,
            aggregate_id=event.aggregate_id,
            sequence=event.sequence,
            type=event.type,
            payload=event.to_bytes(),
            created_at=datetime.now(UTC),
        )

    def next_sequence(self, conn: sa.Connection, aggregate_type: str, aggregate_id: str) -> int:
        """The next per-aggregate sequence number: one more than the outbox holds.

        Two concurrent writers may both read the same maximum; the unique constraint on
        (aggregate_type, aggregate_id, sequence) then makes the second INSERT fail with an
        IntegrityError instead of publishing a duplicate number, and the caller retries its
        whole unit of work (which reads the new maximum). Rows of an aggregate must therefore
        not be deleted from the outbox while it may still emit events, or numbers restart."""
        t = self.table
        query = sa.select(sa.func.coalesce(sa.func.max(t.c.sequence), 0)).where(
            t.c.aggregate_type == aggregate_type, t.c.aggregate_id == aggregate_id
        )
        return int(conn.scalar(query) or 0) + 1

    def pending(self, conn: sa.Connection, limit: int) -> list[PendingEvent]:
        """The oldest unpublished rows, in publish order."""
        t = self.table
        query = (
            sa.select(t.c.position, t.c.event_id, t.c.topic, t.c.aggregate_id, t.c.type)
            .add_columns(t.c.payload, t.c.created_at)
            .where(t.c.published_at.is_(None))
            .order_by(t.c.position)
            .limit(limit)
        )
        return [
            PendingEvent(**{**row._asdict(), "created_at": _aware(row.created_at)})
            for row in conn.execute(query)
        ]

    def mark_published(self, conn: sa.Connection, positions: Sequence[int]) -> None:
        t = self.table
        conn.execute(
            t.update()
            .where(t.c.position.in_(list(positions)), t.c.published_at.is_(None))
            .values(published_at=datetime.now(UTC))
        )

    def record_failure(self, conn: sa.Connection, position: int, error: str) -> None:
        t = self.table
        conn.execute(
            t.update()
            .where(t.c.position == position)
            .values(attempts=t.c.attempts + 1, last_error=error[:2000])
        )

    def backlog(self, conn: sa.Connection) -> tuple[int, datetime | None]:
        """How many rows wait to be published, and when the oldest of them was written."""
        t = self.table
        query = sa.select(sa.func.count(), sa.func.min(t.c.created_at)).where(
            t.c.published_at.is_(None)
        )
        count, oldest = conn.execute(query).one()
        return int(count), _aware(oldest) if oldest is not None else None


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # SQLite keeps no zone
