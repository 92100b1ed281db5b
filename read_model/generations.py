"""The read model's own small DB: which generation of views is served, and the parked events
of its consumer groups.

A generation is one complete set of views, in a table or collection of its own, filled by a
consumer group of its own (`read-model.<generation>`; the prefix is SHOP_READ_MODEL_GROUP)
from the topics' earliest offsets. A rebuild (read_model/rebuild.py) fills the next one
while the served one keeps answering, and swaps when it has caught up. Everything here but
the parked events can be rebuilt from the log, so the tables are created at start-up rather
than migrated."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from libs.db import make_engine
from libs.events.inbox import InboxTables, inbox_tables

_NAME = re.compile(r"^g(\d+)$")

metadata = sa.MetaData()
generations = sa.Table(
    "view_generations",
    metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    # Unique to this generation of this deployment: its cache entries are keyed by it, so two
    # read models sharing a Redis, or a fresh data dir reusing the name g1, never meet.
    sa.Column("uid", sa.String(32), nullable=False),
    # building (a rebuild fills it), serving (the one /api/views reads), retired.
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("serving_since", sa.DateTime(timezone=True), nullable=True),
)
events: InboxTables = inbox_tables(metadata)


def group_of(group: str, generation: str) -> str:
    return f"{group}.{generation}"


def number_of(generation: str) -> int:
    match = _NAME.match(generation)
    if match is None:
        raise ValueError(f"not a generation name: {generation!r}")
    return int(match.group(1))


class Generations:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        metadata.create_all(self.engine)

    def serving(self) -> str:
        """The served generation; g1 on a fresh DB."""
        with self.engine.begin() as conn:
            name = conn.scalar(
                sa.select(generations.c.name).where(generations.c.state == "serving")
            )
            if name is None:
                name = "g1"
                now = datetime.now(UTC)
                conn.execute(
                    generations.insert().values(
                        name=name,
                        uid=uuid.uuid4().hex,
                        state="serving",
                        created_at=now,
                        serving_since=now,
                    )
                )
            return name

    def begin_next(self) -> str:
        """A new generation to build, numbered after every one there was."""
        with self.engine.begin() as conn:
            names = conn.scalars(sa.select(generations.c.name)).all()
            name = f"g{max((number_of(n) for n in names), default=0) + 1}"
            conn.execute(
                generations.insert().values(
                    name=name, uid=uuid.uuid4().hex, state="building", created_at=datetime.now(UTC)
                )
            )
            return name

    def swap(self, name: str) -> str | None:
        """Serves `name` from now on; answers the generation it replaced (now retired)."""
        with self.engine.begin() as conn:
            old = conn.scalar(sa.select(generations.c.name).where(generations.c.state == "serving"))
            conn.execute(
                generations.update().where(generations.c.state == "serving").values(state="retired")
            )
            conn.execute(
                generations.update()
                .where(generations.c.name == name)
                .values(state="serving", serving_since=datetime.now(UTC))
            )
            return old

    def uid(self, name: str) -> str:
        with self.engine.connect() as conn:
            uid = conn.scalar(sa.select(generations.c.uid).where(generations.c.name == name))
        if uid is None:
            raise LookupError(f"no generation {name!r}")
        return uid

    def abandon(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                generations.update()
                .where(generations.c.name == name, generations.c.state == "building")
                .values(state="retired")
            )

    def describe(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(generations).order_by(generations.c.created_at))
            return [dict(row._mapping) for row in rows]

    def close(self) -> None:
        self.engine.dispose()
