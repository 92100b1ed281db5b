"""What happens to the data when the mode moves between dual and single write.

dual -> single: the DBs must agree first (a cutover on drift would make the drift
permanent); the new DB's key sequences move past the copied keys; the legacy tables freeze.
single -> dual (rollback): the legacy tables thaw and get the rows written in single mode
(the new DB is then the source of truth); the legacy sequences move past those keys."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from libs.dualwrite.freeze import install_freeze_triggers, uninstall_freeze_triggers
from libs.dualwrite.modes import Mode
from libs.dualwrite.reconcile import DriftReport, Reconciler
from libs.dualwrite.spec import MigrationSpec


class DriftBlocksCutover(RuntimeError):
    def __init__(self, report: DriftReport) -> None:
        super().__init__(f"the DBs disagree; cutover refused\n{report.render()}")
        self.report = report


class Cutover:
    def __init__(
        self,
        spec: MigrationSpec,
        legacy: sa.Engine,
        new: sa.Engine,
        *,
        freeze_triggers: bool,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.spec, self.legacy, self.new = spec, legacy, new
        self.freeze_triggers = freeze_triggers
        self.registry = registry  # where the reconcile runs are counted

    def __call__(self, old: Mode, new: Mode) -> None:
        if (old, new) == (Mode.DUAL, Mode.SINGLE):
            self.to_single()
        elif (old, new) == (Mode.SINGLE, Mode.DUAL):
            self.back_to_dual()

    def to_single(self) -> None:
        report = Reconciler(self.spec, self.legacy, self.new, registry=self.registry).check()
        if report.has_drift:
            raise DriftBlocksCutover(report)
        with self.new.begin() as conn:
            align_sequences(conn, [t.new for t in self.spec.tables])
        if self.freeze_triggers:
            with self.legacy.begin() as conn:
                install_freeze_triggers(conn, self.spec)

    def back_to_dual(self) -> None:
        with self.legacy.begin() as conn:
            uninstall_freeze_triggers(conn, self.spec)
        Reconciler(
            self.spec, self.new, self.legacy, direction="new->legacy", registry=self.registry
        ).repair()
        with self.legacy.begin() as conn:
            align_sequences(conn, [t.legacy for t in self.spec.tables])


def align_sequences(conn: sa.Connection, tables: Iterable[sa.Table]) -> None:
    """Rows copied with explicit keys leave a PostgreSQL serial's sequence behind, and the
    first generated key would collide with a copied one. SQLite takes max(rowid) + 1 anyway."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        key = list(table.primary_key.columns)
        if len(key) != 1 or not isinstance(key[0].type, sa.Integer):
            continue
        conn.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence(:table, :column), "
                f'COALESCE((SELECT max("{key[0].name}") FROM "{table.name}"), 0) + 1, false) '
                "WHERE pg_get_serial_sequence(:table, :column) IS NOT NULL"
            ),
            {"table": f'"{table.name}"', "column": key[0].name},
        )
