"""The member DB's migrations build the tables the service describes, and the legacy shapes the
service migrates from are the legacy DB's real ones, on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from libs.db import make_engine
from services.member.adapters.migrate import upgrade
from services.member.adapters.tables import legacy_metadata, metadata


def only(tables: sa.MetaData):
    names = set(tables.tables)
    return lambda name, type_, _parent: type_ != "table" or name in names


def diff(engine: sa.Engine, tables: sa.MetaData) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": only(tables)})
        return compare_metadata(context, tables)


def test_the_member_db_schema_matches_the_tables_the_service_uses(db_urls):
    engine = make_engine(db_urls[1])
    upgrade(engine)
    upgrade(engine)  # twice is harmless
    assert diff(engine, metadata) == []
    assert "dualwrite_sync_cursor" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_the_legacy_shapes_match_the_legacy_db_the_monolith_migrates(db_urls):
    engine = make_engine(db_urls[0])  # migrated by the monolith's own migrations
    assert diff(engine, legacy_metadata) == []
    engine.dispose()
