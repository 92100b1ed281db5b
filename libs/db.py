"""Engines every process builds the same way: SQLite files (the embedded default) with the
pragmas dual write relies on (libs/dualwrite/sqlite.py), PostgreSQL by URL; and the ping its
readiness check runs."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from libs.dualwrite.sqlite import sqlite_engine


def make_engine(url: str, *, pool_size: int = 10) -> sa.Engine:
    if make_url(url).get_backend_name() == "sqlite":
        return sqlite_engine(url, pool_size=pool_size)
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def ping(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
