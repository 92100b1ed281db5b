"""SQLite engines, the embedded default of every process: foreign keys on, a busy timeout,
BEGIN IMMEDIATE for writes, the rollback journal; and, for dual write, the new DB's file
ATTACHed to the legacy connection.

Why ATTACH: SQLite commits a transaction that wrote to several attached files atomically (a
super-journal names every file's journal; the commit happens when it is deleted), so one
COMMIT makes the write visible in both DBs or in neither. That holds only in rollback-journal
mode: with WAL, each file commits on its own and a crash can keep one half. Hence
journal_mode=DELETE on *every* schema of the connection, checked, not assumed."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ATTACHED = "newdb"


class JournalModeError(RuntimeError):
    """A schema of the connection is not in rollback-journal mode (dual write would not be
    atomic)."""


def sqlite_engine(
    url: str, *, attach: str | None = None, pool_size: int = 5, wal: bool = False
) -> sa.Engine:
    """An engine for a SQLite file; with `attach`, every connection also ATTACHes that
    database file as schema `newdb`. `wal`: write-ahead logging instead of the rollback
    journal, for a file no dual write ever spans (one fsync per commit instead of several,
    and readers that do not wait for the writer); still synchronous=FULL."""
    if wal and attach is not None:
        raise ValueError("dual write across ATTACHed files needs the rollback journal")
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    _configure(engine, attach, "wal" if wal else "delete")
    return engine


def database_path(engine: sa.Engine) -> str:
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        raise ValueError("dual write on SQLite needs both DBs in files")
    return path


def _configure(engine: sa.Engine, attach: str | None, journal: str) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # SQLAlchemy's "begin" event issues BEGIN itself: pysqlite's implicit BEGIN is
        # DEFERRED, which lets two writers deadlock on lock upgrade instead of queueing.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            _journal(cursor, "main", journal)
            cursor.execute("PRAGMA synchronous=FULL")
            if attach is not None:
                cursor.execute(f"ATTACH DATABASE ? AS {ATTACHED}", (attach,))
                # journal_mode is per schema: the attached file needs it too.
                _journal(cursor, ATTACHED, journal)
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # IMMEDIATE takes the write lock of every attached file at BEGIN, so a dual write
        # queues once for both instead of failing halfway with SQLITE_BUSY.
        mode = "DEFERRED" if connection.get_execution_options().get("readonly") else "IMMEDIATE"
        connection.exec_driver_sql(f"BEGIN {mode}")


def _journal(cursor, schema: str, journal: str) -> None:
    mode = cursor.execute(f"PRAGMA {schema}.journal_mode={journal.upper()}").fetchone()[0]
    if str(mode).lower() != journal:
        raise JournalModeError(f"{schema} stays in journal_mode={mode}, not {journal}")
