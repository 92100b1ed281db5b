"""The migration writer: one write API whose target follows the mode.

    with writer.transaction() as tx:
        tx.write("members", lambda t: t.update().where(t.c.id == 7).values(points=t.c.points + 5))

shared: the statement runs on the legacy table (the sync job copies it).
dual:   it runs on the legacy table and on the new table in one transaction, all or nothing:
        SQLite through the new DB's file ATTACHed to the legacy connection (one COMMIT),
        PostgreSQL through two-phase commit (twophase.py).
single: it runs on the new table only; the legacy table is frozen.

The block commits when it ends normally and rolls back when it raises."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from libs.db.sqlite import ATTACHED, database_path, sqlite_engine
from libs.dualwrite.cutover import Cutover
from libs.dualwrite.faults import Fault, no_fault
from libs.dualwrite.freeze import guard_frozen_tables
from libs.dualwrite.metrics import migration_metrics
from libs.dualwrite.modes import Mode, ModeSwitch
from libs.dualwrite.spec import MigrationSpec, TableSpec
from libs.dualwrite.twophase import RecoveryReport, TwoPhaseCommit

Builder = Callable[[sa.Table], sa.Executable]
Execute = Callable[[sa.Executable], sa.CursorResult]


def _on(conn: sa.Connection, **options) -> Execute:
    # Per statement: Connection.execution_options() would change the shared connection.
    return lambda statement: conn.execute(statement, execution_options=options)


class DivergedWrite(RuntimeError):
    """The same statement changed a different number of rows in the two DBs: they had
    already drifted apart, and committing would hide it. The transaction is rolled back."""


@dataclass
class WriteTransaction:
    mode: Mode
    spec: MigrationSpec
    legacy: Execute | None
    new: Execute | None
    fault: Fault = no_fault

    def write(
        self, table: str, build: Builder, build_new: Builder | None = None
    ) -> sa.CursorResult:
        """Run `build(table)` where the mode says; `build_new` when the new table's columns
        are named differently. Returns the result from the DB of record.

        The builder runs once per DB: compute values such as timestamps before, not inside
        it, or the two rows differ by the time between the calls."""
        spec = self.spec.table(table)
        if self.new is None:
            assert self.legacy is not None  # a transaction always reaches at least one DB
            return self.legacy(build(spec.legacy))
        if self.legacy is None:
            return self.new((build_new or build)(spec.new))
        first = self.legacy(build(spec.legacy))
        self.fault("after_legacy_write")
        second = self.new(copy_generated_key((build_new or build)(spec.new), first, spec))
        _check_same_effect(spec, first, second)
        return first

    def read(self, table: str, build: Builder) -> sa.CursorResult:
        """Reads go to the legacy DB until single write, as in the talk's shared-DB stage."""
        spec = self.spec.table(table)
        if self.legacy is not None:
            return self.legacy(build(spec.legacy))
        assert self.new is not None  # a transaction always reaches at least one DB
        return self.new(build(spec.new))


def copy_generated_key(statement: sa.Executable, legacy_result: sa.CursorResult, spec: TableSpec):
    """An insert that let the legacy DB generate its key gives the new row the same key."""
    if not isinstance(statement, sa.Insert):
        return statement
    try:
        key = legacy_result.inserted_primary_key
    except sa.exc.InvalidRequestError:  # multi-row insert: keys must be explicit
        return statement
    if key is None or None in key:
        return statement
    legacy_key = [c.name for c in spec.legacy.primary_key]
    return statement.values({spec.columns[n]: v for n, v in zip(legacy_key, key, strict=True)})


def _check_same_effect(spec: TableSpec, first: sa.CursorResult, second: sa.CursorResult) -> None:
    if first.rowcount != second.rowcount:
        raise DivergedWrite(
            f"{spec.name}: legacy changed {first.rowcount} row(s), new changed {second.rowcount}"
        )


class DualWriter:
    def __init__(
        self,
        spec: MigrationSpec,
        legacy: sa.Engine,
        new: sa.Engine,
        *,
        switch: ModeSwitch,
        registry: CollectorRegistry | None = None,
        fault: Fault = no_fault,
        freeze_triggers: bool = True,
    ) -> None:
        """`freeze_triggers`: in single mode, triggers in the legacy DB refuse every write to
        the moved tables (in addition to this process's own guard)."""
        self.spec, self.legacy, self.new, self.switch = spec, legacy, new, switch
        self.fault = fault
        self.metrics = migration_metrics(registry)
        self._attached: sa.Engine | None = None
        self._two_phase: TwoPhaseCommit | None = None
        self._pick_backend()
        self._unguard = guard_frozen_tables(legacy, spec, lambda: switch.mode is Mode.SINGLE)
        self._show_mode(switch.mode)
        cutover = Cutover(spec, legacy, new, freeze_triggers=freeze_triggers, registry=registry)
        switch.add_hook(cutover)
        switch.add_hook(lambda _old, new_mode: self._show_mode(new_mode))

    def _pick_backend(self) -> None:
        dialects = {self.legacy.dialect.name, self.new.dialect.name}
        if dialects == {"sqlite"}:
            legacy_url = self.legacy.url.render_as_string(hide_password=False)
            self._attached = sqlite_engine(legacy_url, attach=database_path(self.new))
        elif dialects == {"postgresql"}:
            self._two_phase = TwoPhaseCommit(
                self.spec.name, self.legacy, self.new, fault=self.fault
            )
        else:
            raise ValueError(f"dual write needs both DBs on one backend, got {sorted(dialects)}")

    @contextmanager
    def transaction(self) -> Iterator[WriteTransaction]:
        with self.switch.holding() as mode:
            started, outcome = time.perf_counter(), "error"
            try:
                with self._open(mode) as tx:
                    yield tx
                outcome = "committed"
            finally:
                labels = (self.spec.name, mode.value)
                self.metrics.write_seconds.labels(*labels).observe(time.perf_counter() - started)
                self.metrics.writes.labels(*labels, outcome).inc()

    def recover(self, *, older_than: float = 0.0) -> RecoveryReport:
        """Finish in-doubt two-phase transactions (PostgreSQL); call it at start-up."""
        if self._two_phase is None:
            return RecoveryReport()  # SQLite rolls a torn commit back when the file is opened
        report = self._two_phase.recover(older_than=older_than)
        for decision, gids in (("commit", report.committed), ("rollback", report.rolled_back)):
            if gids:
                self.metrics.in_doubt_resolved.labels(self.spec.name, decision).inc(len(gids))
        return report

    def check(self) -> None:
        """Fail at start-up, not at the first dual write, when 2PC is disabled."""
        if self._two_phase is not None:
            self._two_phase.check_enabled()

    def close(self) -> None:
        self._unguard()
        if self._attached is not None:
            self._attached.dispose()

    @contextmanager
    def _open(self, mode: Mode) -> Iterator[WriteTransaction]:
        if mode is Mode.SHARED:
            with self.legacy.begin() as conn:
                yield WriteTransaction(mode, self.spec, _on(conn), None)
        elif mode is Mode.SINGLE:
            with self.new.begin() as conn:
                yield WriteTransaction(mode, self.spec, None, _on(conn))
        elif self._attached is not None:
            with self._attached.begin() as conn:
                new = _on(conn, schema_translate_map={None: ATTACHED})
                yield WriteTransaction(mode, self.spec, _on(conn), new, self.fault)
                self.fault("before_commit")
        else:
            assert self._two_phase is not None  # _pick_backend set one of the two backends
            with self._two_phase.transaction() as (legacy_conn, new_conn):
                yield WriteTransaction(mode, self.spec, _on(legacy_conn), _on(new_conn), self.fault)

    def _show_mode(self, current: Mode) -> None:
        for mode in Mode:
            self.metrics.mode.labels(self.spec.name, mode.value).set(int(mode is current))
