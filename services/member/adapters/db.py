"""Engines: SQLite (the toolkit's engine, with the pragmas dual write relies on) by default,
PostgreSQL by URL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from libs.dualwrite import sqlite_engine


def make_engine(url: str, *, pool_size: int = 10) -> sa.Engine:
    if make_url(url).get_backend_name() == "sqlite":
        return sqlite_engine(url, pool_size=pool_size)
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
