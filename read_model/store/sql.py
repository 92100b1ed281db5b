"""The view store on SQLite or PostgreSQL: one table per generation, the document as JSON.

Table `read_views_<generation>`: (kind, key) the primary key, `version`, `doc` (the view's
data, applied and held as one JSON document; JSONB on PostgreSQL) and `updated_at`. The guard
that keeps two writers from losing each other's change is in the statement, never in a read
before it: a new view is an INSERT that the primary key refuses if another writer inserted
first, a change is an UPDATE ... WHERE version = expected that matches no row if another
writer moved the version on. On PostgreSQL the second UPDATE waits for the first's row lock
and then re-checks the version; on SQLite every write transaction is BEGIN IMMEDIATE
(libs/db/sqlite.py), so writers queue. The caller re-reads and retries.

The engine is synchronous (libs.db.make_engine, the same pragmas as every other process);
each async method runs its work in a thread, so the event loop never waits on the database."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from libs.db import make_engine
from read_model.store import View
from read_model.store.factory import check_generation

TABLE_PREFIX = "read_views_"
# The SQLSTATE of a unique violation, and SQLite's message for one.
PG_UNIQUE_VIOLATION = "23505"
SQLITE_UNIQUE = "UNIQUE constraint failed"


def views_table(generation: str, metadata: sa.MetaData | None = None) -> sa.Table:
    return sa.Table(
        TABLE_PREFIX + check_generation(generation),
        metadata or sa.MetaData(),
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("doc", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )


class SqlViewStore:
    """The views of one generation in a SQLite file or a PostgreSQL database (`url`, a
    SQLAlchemy URL)."""

    def __init__(self, url: str, generation: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.generation = check_generation(generation)
        self.table = views_table(generation)
        self._pool_size = pool_size
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            raise RuntimeError("SqlViewStore.start() was not called")
        return self._engine

    async def start(self) -> None:
        if self._engine is None:
            # WAL on SQLite: views are no part of any dual write, and their writes (one per
            # view an event changes) should not queue on the rollback journal's fsyncs.
            self._engine = make_engine(self.url, pool_size=self._pool_size, wal=True)
        await asyncio.to_thread(self.table.create, self.engine, checkfirst=True)

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    async def get(self, kind: str, key: str) -> View | None:
        return await asyncio.to_thread(self._get, kind, key)

    async def put(self, view: View, expected: int) -> bool:
        return await asyncio.to_thread(self._put, view, expected)

    async def keys(self, kind: str) -> list[str]:
        query = sa.select(self.table.c.key).where(self.table.c.kind == kind)
        return sorted(await asyncio.to_thread(self._read_column, query))

    async def count(self, kind: str) -> int:
        query = sa.select(sa.func.count()).where(self.table.c.kind == kind)
        return int((await asyncio.to_thread(self._read_column, query))[0])

    async def drop(self) -> None:
        await asyncio.to_thread(self.table.drop, self.engine, checkfirst=True)

    def _get(self, kind: str, key: str) -> View | None:
        t = self.table
        query = sa.select(t.c.version, t.c.doc, t.c.updated_at).where(
            t.c.kind == kind, t.c.key == key
        )
        with self._reading() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return View(
            kind=kind,
            key=key,
            version=row.version,
            data=row.doc["data"],
            applied=row.doc["applied"],
            held=row.doc["held"],
            updated_at=row.updated_at,
        )

    def _put(self, view: View, expected: int) -> bool:
        values = _row(view)
        if expected == 0:
            return self._insert(values)
        t = self.table
        update = (
            t.update()
            .where(t.c.kind == view.kind, t.c.key == view.key, t.c.version == expected)
            .values(values)
        )
        with self.engine.begin() as conn:
            return conn.execute(update).rowcount == 1

    def _insert(self, values: dict[str, Any]) -> bool:
        """Inserts a new view; False if one with its key exists. The transaction is the
        INSERT's own: on PostgreSQL the refused statement aborts it, and it is rolled back."""
        try:
            with self.engine.begin() as conn:
                conn.execute(self.table.insert().values(values))
        except sa.exc.IntegrityError as exc:
            if _unique_violation(exc):
                return False
            raise
        return True

    def _read_column(self, query: sa.Select) -> list[Any]:
        with self._reading() as conn:
            return list(conn.execute(query).scalars())

    def _reading(self) -> sa.Connection:
        # A read takes no write lock on SQLite (libs/db/sqlite.py begins DEFERRED for it).
        return self.engine.connect().execution_options(readonly=True)


def _row(view: View) -> dict[str, Any]:
    return {
        "kind": view.kind,
        "key": view.key,
        "version": view.version,
        "doc": {"data": view.data, "applied": view.applied, "held": view.held},
        "updated_at": view.updated_at,
    }


def _unique_violation(exc: sa.exc.IntegrityError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate == PG_UNIQUE_VIOLATION or SQLITE_UNIQUE in str(exc.orig)
