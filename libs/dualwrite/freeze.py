"""Single-write mode freezes the legacy copies of the moved tables, so a code path nobody
moved fails loudly instead of writing rows the new DB never sees.

Two layers: a guard on the legacy engine that refuses INSERT/UPDATE/DELETE statements on a
frozen table (the process's own code), and triggers that raise inside the legacy DB (every
other process, script or console)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import sqlalchemy as sa

from libs.dualwrite.capture import Captured, captured_tables
from libs.dualwrite.spec import MigrationSpec

UNFREEZE = "dualwrite_unfreeze"  # execution option: the toolkit's own rollback copy


class FrozenTableError(RuntimeError):
    pass


def guard_frozen_tables(
    engine: sa.Engine, spec: MigrationSpec, frozen: Callable[[], bool]
) -> Callable[[], None]:
    """Refuse writes to the spec's legacy tables through `engine` while `frozen()`; returns
    a function that removes the guard."""
    names = {t.legacy.name for t in spec.tables}

    def check(conn, clauseelement, _multiparams, _params, execution_options) -> None:
        if not isinstance(clauseelement, sa.Insert | sa.Update | sa.Delete):
            return
        table = cast(sa.TableClause, clauseelement.table)  # DML here targets a named table
        if table.name not in names or not frozen():
            return
        if execution_options.get(UNFREEZE) or conn.get_execution_options().get(UNFREEZE):
            return
        raise FrozenTableError(
            f"{table.name} is frozen: migration {spec.name} writes the new DB only"
        )

    sa.event.listen(engine, "before_execute", check)
    return lambda: sa.event.remove(engine, "before_execute", check)


def install_freeze_triggers(conn: sa.Connection, spec: MigrationSpec) -> None:
    for table in spec.tables:
        for statement in _freeze_sql(conn.dialect.name, table.legacy.name, spec.name):
            conn.exec_driver_sql(statement)


def uninstall_freeze_triggers(conn: sa.Connection, tables: Captured) -> None:
    for table in captured_tables(tables):
        name = table.name
        if conn.dialect.name == "sqlite":
            for op in ("INSERT", "UPDATE", "DELETE"):
                conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "dualwrite_frozen_{name}_{op}"')
        else:
            conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS dualwrite_frozen ON "{name}"')


def _freeze_sql(dialect: str, table: str, migration: str) -> list[str]:
    message = f"{table} is frozen: migration {migration} writes the new DB only"
    if dialect == "sqlite":
        return [
            f'CREATE TRIGGER IF NOT EXISTS "dualwrite_frozen_{table}_{op}" BEFORE {op} '
            f"ON \"{table}\" BEGIN SELECT RAISE(ABORT, '{message}'); END"
            for op in ("INSERT", "UPDATE", "DELETE")
        ]
    return [
        "CREATE OR REPLACE FUNCTION dualwrite_frozen() RETURNS trigger LANGUAGE plpgsql AS "
        "$fn$ BEGIN RAISE EXCEPTION USING ERRCODE = 'read_only_sql_transaction', MESSAGE = "
        "TG_TABLE_NAME || ' is frozen: migration ' || TG_ARGV[0] || ' writes the new DB only'; "
        "END $fn$",
        f'DROP TRIGGER IF EXISTS dualwrite_frozen ON "{table}"',
        "CREATE TRIGGER dualwrite_frozen BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE "
        f"ON \"{table}\" FOR EACH STATEMENT EXECUTE FUNCTION dualwrite_frozen('{migration}')",
    ]


def frozen_tables(conn: sa.Connection, spec: MigrationSpec) -> list[str]:
    """The spec's legacy tables whose freeze triggers are installed: single write has
    happened, and nothing may write them until a rollback to dual thaws them."""
    names = [t.legacy.name for t in spec.tables]
    if conn.dialect.name == "sqlite":
        query = sa.text("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name = :n")
        found = [conn.execute(query, {"n": f"dualwrite_frozen_{t}_INSERT"}).scalar() for t in names]
    else:
        query = sa.text(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE t.tgname = 'dualwrite_frozen' AND c.relname = :n"
            " AND c.relnamespace = to_regnamespace(current_schema())"
        )
        found = [conn.execute(query, {"n": t}).scalar() for t in names]
    return [name for name in found if name]
