"""Engines every process builds the same way: SQLite files (the embedded default) with the
pragmas dual write relies on (libs/db/sqlite.py), PostgreSQL by URL; the ping its readiness
check runs; the column types every schema shares (libs/db/types.py); and the commit guard
on every engine, so a request answered 504 TIMEOUT commits nothing
(libs/timeouts/commit_guard.py)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from libs.db.sqlite import sqlite_engine
from libs.db.types import ID, Timestamp
from libs.timeouts.commit_guard import install_commit_guard

__all__ = ["ID", "Timestamp", "make_engine", "ping", "sqlite_engine"]

# Every engine of the process: a request that timed out commits nothing (commit_guard.py).
install_commit_guard()


def make_engine(url: str, *, pool_size: int = 10, wal: bool = False) -> sa.Engine:
    """`wal`: on SQLite, write-ahead logging (see sqlite_engine); PostgreSQL ignores it."""
    if make_url(url).get_backend_name() == "sqlite":
        return sqlite_engine(url, pool_size=pool_size, wal=wal)
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def ping(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
