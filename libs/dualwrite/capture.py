"""Change capture in the legacy DB: triggers record the key of every inserted, updated or
deleted row of a moving table in `dualwrite_changes`, in the same transaction as the write.

Triggers, not application hooks: every writer of the legacy DB (the monolith, a script, a
console session) is captured, so the batch sync cannot miss a code path nobody knew about.
Only keys are recorded; the sync job reads each row's current state when it applies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from libs.db.types import ID
from libs.dualwrite.spec import MigrationSpec

metadata = sa.MetaData()

changes = sa.Table(
    "dualwrite_changes",
    metadata,
    sa.Column("id", ID, primary_key=True),
    # PostgreSQL transaction id of the writer (0 on SQLite): the sync job reads in (xid, id)
    # order and only below the oldest running transaction, see sync_job.py.
    sa.Column("xid", sa.BigInteger, nullable=False),
    sa.Column("table_name", sa.String(63), nullable=False),
    sa.Column("pk", sa.Text, nullable=False),
    sa.Column("op", sa.String(1), nullable=False),
    sa.Column("changed_at", sa.Float, nullable=False),
    sa.Index("ix_dualwrite_changes_xid_id", "xid", "id"),
    # AUTOINCREMENT: SQLite never reuses an id after the consumed rows are pruned, so ids only
    # grow and the cursor cannot be overtaken by a recycled one.
    sqlite_autoincrement=True,
)


@dataclass(frozen=True)
class CapturedTable:
    """What a capture trigger needs of a table: its name and its key columns. A migration
    names its tables with these, frozen as they were at its revision, instead of reading a
    service's live spec (which may change, or leave with the service)."""

    name: str
    key: tuple[str, ...]


Captured = MigrationSpec | Iterable[CapturedTable]


def captured_tables(tables: Captured) -> tuple[CapturedTable, ...]:
    if isinstance(tables, MigrationSpec):
        return tuple(CapturedTable(t.legacy.name, t.key) for t in tables.tables)
    return tuple(tables)


def install_change_capture(conn: sa.Connection, tables: Captured) -> None:
    """Create the change table and the triggers (idempotent; call it from a migration)."""
    metadata.create_all(conn, checkfirst=True)
    for table in captured_tables(tables):
        for statement in _trigger_sql(conn.dialect.name, table):
            conn.exec_driver_sql(statement)


def uninstall_change_capture(conn: sa.Connection, tables: Captured) -> None:
    for table in captured_tables(tables):
        for statement in _drop_sql(conn.dialect.name, table):
            conn.exec_driver_sql(statement)


def decode_key(pk: str) -> tuple:
    return tuple(json.loads(pk))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _key_json(dialect: str, table: CapturedTable, row: str) -> str:
    values = ", ".join(f"{row}.{_q(k)}" for k in table.key)
    return f"json_array({values})" if dialect == "sqlite" else f"json_build_array({values})::text"


def _key_changed(table: CapturedTable) -> str:
    return " OR ".join(f"OLD.{_q(k)} IS NOT NEW.{_q(k)}" for k in table.key)


def _trigger_sql(dialect: str, table: CapturedTable) -> list[str]:
    return _sqlite_triggers(table) if dialect == "sqlite" else _postgres_triggers(table)


_INSERT = "INSERT INTO dualwrite_changes (xid, table_name, pk, op, changed_at)"
_SQLITE_NOW = "(julianday('now') - 2440587.5) * 86400.0"


def _sqlite_trigger_name(table: CapturedTable, op: str) -> str:
    return _q(f"dualwrite_capture_{table.name}_{op}")


def _sqlite_triggers(table: CapturedTable) -> list[str]:
    t, on = table.name, _q(table.name)
    new, old = _key_json("sqlite", table, "NEW"), _key_json("sqlite", table, "OLD")
    record = f"{_INSERT} VALUES (0, '{t}', {{key}}, '{{op}}', {_SQLITE_NOW});"
    # A changed key leaves the old key behind: it is recorded too, so the job deletes it.
    moved = f"{_INSERT} SELECT 0, '{t}', {old}, 'D', {_SQLITE_NOW} WHERE {_key_changed(table)};"
    create = "CREATE TRIGGER IF NOT EXISTS"
    return [
        f"{create} {_sqlite_trigger_name(table, 'i')} AFTER INSERT ON {on} "
        f"BEGIN {record.format(key=new, op='I')} END",
        f"{create} {_sqlite_trigger_name(table, 'u')} AFTER UPDATE ON {on} "
        f"BEGIN {record.format(key=new, op='U')} {moved} END",
        f"{create} {_sqlite_trigger_name(table, 'd')} AFTER DELETE ON {on} "
        f"BEGIN {record.format(key=old, op='D')} END",
    ]


def _postgres_function(table: CapturedTable) -> str:
    return _q(f"dualwrite_capture_{table.name}")


def _postgres_triggers(table: CapturedTable) -> list[str]:
    t, on, function = table.name, _q(table.name), _postgres_function(table)
    new, old = _key_json("postgresql", table, "NEW"), _key_json("postgresql", table, "OLD")
    xid, now = "pg_current_xact_id()::text::bigint", "extract(epoch from clock_timestamp())"
    moved = _key_changed(table).replace(" IS NOT ", " IS DISTINCT FROM ")
    body = f"""
BEGIN
  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND ({moved})) THEN
    {_INSERT} VALUES ({xid}, '{t}', {old}, 'D', {now});
  END IF;
  IF TG_OP <> 'DELETE' THEN
    {_INSERT} VALUES ({xid}, '{t}', {new}, left(TG_OP, 1), {now});
  END IF;
  RETURN NULL;
END"""
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql "
        f"AS $fn${body}$fn$",
        f"DROP TRIGGER IF EXISTS dualwrite_capture ON {on}",
        f"CREATE TRIGGER dualwrite_capture AFTER INSERT OR UPDATE OR DELETE ON {on} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
    ]


def _drop_sql(dialect: str, table: CapturedTable) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {_sqlite_trigger_name(table, op)}" for op in "iud"]
    return [
        f"DROP TRIGGER IF EXISTS dualwrite_capture ON {_q(table.name)}",
        f"DROP FUNCTION IF EXISTS {_postgres_function(table)}()",
    ]
