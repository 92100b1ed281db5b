"""The shop's state as its owners hold it, gathered into one in-memory SQLite database with the
legacy schema, so one set of invariants (monolith/invariants.py) checks the whole system at
any stage: each moving table is copied from the DB that owns it at that stage (the legacy DB
until its extraction's dual write, the service's own DB from then on), what stays behind
(products, stock holds, shipments) from the legacy DB, and the outbox as the union of every
process's (an order's events may be in two of them)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import sqlalchemy as sa

from infra.extractions import EXTRACTIONS, Extraction
from infra.stages import STAGES, Stage, writes_held_by
from libs.db import make_engine
from monolith.adapters import tables

OUTBOX = tables.event_outbox.name


@contextmanager
def owning_dbs(legacy_url: str, service_dbs: Mapping[str, str]) -> Iterator[dict[str, sa.Engine]]:
    """An engine for the legacy DB and for each extraction's service DB (`service_dbs`: its
    name -> URL), as `snapshot` takes them; disposed when the block ends."""
    dbs = {"legacy": make_engine(legacy_url)}
    dbs |= {name: make_engine(url) for name, url in service_dbs.items()}
    try:
        yield dbs
    finally:
        for engine in dbs.values():
            engine.dispose()


def owner(number: int, extraction: Extraction, stages: tuple[Stage, ...] = STAGES) -> str:
    """Which DB holds all of an extraction's rows at stage `number`: "legacy", or the
    extraction's name for its service's DB (dual write keeps both complete; the new one is
    read from then on)."""
    held = writes_held_by(number, extraction.name, stages)
    return extraction.name if "new" in held else "legacy"


@contextmanager
def snapshot(
    number: int,
    dbs: Mapping[str, sa.Engine],
    extractions: tuple[Extraction, ...] = EXTRACTIONS,
) -> Iterator[sa.Connection]:
    """`dbs`: "legacy" and each extraction's name -> its engine. Yields a connection to the
    gathered copy; it is gone when the block ends."""
    target = sa.create_engine("sqlite://")
    try:
        tables.metadata.create_all(target)
        moving = {
            t.legacy.name: owner(number, e) for e in extractions for t in e.migration().tables
        }
        with target.begin() as out:
            for table in tables.metadata.sorted_tables:
                if table.name == OUTBOX:
                    continue
                _copy(dbs[moving.get(table.name, "legacy")], table, out)
            seen: set[str] = set()
            for engine in dbs.values():
                _copy_outbox(engine, out, seen)
        with target.connect() as conn:
            yield conn
    finally:
        target.dispose()


def _copy(source: sa.Engine, table: sa.Table, out: sa.Connection) -> None:
    with source.connect() as conn:
        if not sa.inspect(conn).has_table(table.name):
            return
        rows = [dict(row._mapping) for row in conn.execute(sa.select(table))]
    if rows:
        out.execute(table.insert(), rows)


def _copy_outbox(source: sa.Engine, out: sa.Connection, seen: set[str]) -> None:
    table = tables.event_outbox
    with source.connect() as conn:
        if not sa.inspect(conn).has_table(table.name):
            return
        columns = [c for c in table.columns if c.name != "position"]
        rows = [dict(row._mapping) for row in conn.execute(sa.select(*columns))]
    fresh = [row for row in rows if row["event_id"] not in seen]
    seen.update(row["event_id"] for row in fresh)
    if fresh:
        out.execute(table.insert(), fresh)
