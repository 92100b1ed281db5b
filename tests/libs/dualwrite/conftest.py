"""A legacy DB and a new DB for the member tables, on SQLite files and on two PostgreSQL
databases of the test server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from libs.db.sqlite import sqlite_engine
from libs.dualwrite.capture import install_change_capture
from libs.dualwrite.rows import scan
from libs.dualwrite.sync_job import install_sync_cursor
from monolith.adapters.tables import metadata as legacy_metadata
from tests.libs.dualwrite.schema import LEGACY_TABLES, MEMBERS, member_values, new_metadata


@dataclass
class Migration:
    backend: str
    legacy_url: str
    new_url: str
    legacy: sa.Engine
    new: sa.Engine
    registry: CollectorRegistry
    spec = MEMBERS

    def add_member(self, email: str, points: int = 0) -> int:
        """A write the way the monolith makes it: straight to the legacy DB."""
        members = self.spec.table("members").legacy
        with self.legacy.begin() as conn:
            return conn.execute(
                members.insert().values(member_values(email, points))
            ).inserted_primary_key[0]

    def legacy_exec(self, statement: sa.Executable) -> None:
        with self.legacy.begin() as conn:
            conn.execute(statement)

    def rows(self, side: str, table: str = "members") -> list[tuple]:
        spec = self.spec.table(table)
        engine, which = (
            (self.legacy, spec.legacy_side) if side == "legacy" else (self.new, spec.new_side)
        )
        with engine.connect() as conn:
            # readonly: BEGIN DEFERRED, so looking does not queue behind a busy writer.
            return scan(conn.execution_options(readonly=True), which, None, None)

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


def make_engine(url: str) -> sa.Engine:
    return sqlite_engine(url) if url.startswith("sqlite") else sa.create_engine(url)


def create_schemas(legacy: sa.Engine, new: sa.Engine) -> None:
    with legacy.begin() as conn:
        legacy_metadata.create_all(conn, tables=LEGACY_TABLES)
        install_change_capture(conn, MEMBERS)
    with new.begin() as conn:
        new_metadata.create_all(conn)
        install_sync_cursor(conn)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def urls(backend: str, tmp_path, request) -> tuple[str, str]:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'legacy.db'}", f"sqlite:///{tmp_path / 'member.db'}"
    create: Callable[[], str] = request.getfixturevalue("postgres_databases")
    return create(), create()


@pytest.fixture
def migration(backend: str, urls: tuple[str, str]) -> Iterator[Migration]:
    legacy, new = make_engine(urls[0]), make_engine(urls[1])
    create_schemas(legacy, new)
    try:
        yield Migration(backend, urls[0], urls[1], legacy, new, CollectorRegistry())
    finally:
        legacy.dispose()
        new.dispose()
