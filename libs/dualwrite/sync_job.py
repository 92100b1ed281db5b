"""The batch sync job of the shared-DB stage: legacy -> new, continuous and incremental.

Each batch reads the next captured changes from the legacy DB, applies the current state of
the changed rows to the new DB, and moves the job's cursor *in the same new-DB transaction*:
a crash before that commit leaves rows and cursor as they were, a crash after it leaves both
moved, so nothing is lost or applied twice. Applying is idempotent anyway (current state, by
key), which also makes two job instances racing on one cursor harmless.

Ordering on PostgreSQL: a sequence hands out ids when a transaction writes, not when it
commits, so change 11 can be visible while change 10 is still in flight; a cursor on ids
alone would skip 10 for ever. Changes are therefore read in (transaction id, id) order and
only from transactions older than the oldest one still running (the snapshot's xmin), which
are all finished: every change that becomes visible later sorts after the cursor. SQLite has
one writer at a time, so ids are already in commit order there (xid is 0)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from sqlalchemy.dialects import postgresql, sqlite

from libs.dualwrite.apply import Applied, apply_keys
from libs.dualwrite.capture import changes, decode_key
from libs.dualwrite.metrics import migration_metrics
from libs.dualwrite.modes import Mode, ModeSwitch
from libs.dualwrite.rows import Key
from libs.dualwrite.spec import MigrationSpec

log = logging.getLogger(__name__)

metadata = sa.MetaData()

sync_cursor = sa.Table(
    "dualwrite_sync_cursor",
    metadata,
    sa.Column("job", sa.String(100), primary_key=True),
    sa.Column("xid", sa.BigInteger, nullable=False),
    sa.Column("change_id", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

Cursor = tuple[int, int]  # (xid, change id) of the last applied change

_NO_HORIZON = 2**62


def install_sync_cursor(conn: sa.Connection) -> None:
    """Create the cursor table in the new DB (idempotent; call it from a migration)."""
    metadata.create_all(conn, checkfirst=True)


@dataclass(frozen=True)
class SyncResult:
    changes: int = 0
    upserted: int = 0
    deleted: int = 0
    skipped: bool = False


class SyncJob:
    def __init__(
        self,
        spec: MigrationSpec,
        legacy: sa.Engine,
        new: sa.Engine,
        *,
        batch_size: int = 500,
        registry: CollectorRegistry | None = None,
        switch: ModeSwitch | None = None,
        prune: bool = True,
    ) -> None:
        self.spec, self.legacy, self.new = spec, legacy, new
        self.name = f"{spec.name}_sync"
        self.batch_size = batch_size
        self.prune = prune
        self.switch = switch
        self.metrics = migration_metrics(registry)
        if switch is not None:
            switch.add_hook(self._on_switch)

    def run_once(self) -> SyncResult:
        """One batch; does nothing outside the shared mode (in dual and single mode the
        writer keeps the new DB current, and a batch would overwrite it with legacy rows)."""
        if self.switch is None:
            return self._batch()
        with self.switch.holding() as mode:
            return self._batch() if mode is Mode.SHARED else SyncResult(skipped=True)

    def drain(self, timeout: float = 30.0) -> int:
        """Run batches until no change is pending at all; returns changes applied.

        On PostgreSQL a batch takes only changes below the snapshot horizon, so a transaction
        still open anywhere on the server holds later changes back. Draining waits for it
        rather than stopping early: the shared -> dual switch relies on nothing being left.
        Raises TimeoutError if changes are still pending after `timeout` seconds."""
        total, deadline = 0, time.monotonic() + timeout
        while True:
            applied = self._batch().changes
            total += applied
            if applied:
                continue
            if self.pending()[0] == 0:
                return total
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"sync {self.name}: changes still pending after {timeout:g}s; an open "
                    "transaction on the legacy server holds them below the horizon"
                )
            time.sleep(0.05)

    async def run(self, *, interval: float, stop: asyncio.Event) -> None:
        """Batch after batch until `stop` is set; sleeps `interval` only when caught up."""
        while not stop.is_set():
            try:
                result = await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("sync batch failed; retrying after %ss", interval)
                self.metrics.sync_batches.labels(self.spec.name, "error").inc()
                result = SyncResult()
            if result.changes < self.batch_size:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)

    def pending(self) -> tuple[int, float]:
        """(changes not yet applied, age in seconds of the oldest), also set as metrics."""
        with self.new.connect() as conn:
            after = _read_cursor(conn, self.name)
        with self._legacy_reader() as conn:
            count, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(changes.c.changed_at)).where(
                    _after(after), self._mine
                )
            ).one()
        lag = max(0.0, time.time() - oldest) if oldest is not None else 0.0
        self.metrics.sync_pending.labels(self.spec.name).set(count)
        self.metrics.sync_lag.labels(self.spec.name).set(lag)
        return count, lag

    def _batch(self) -> SyncResult:
        with self.new.begin() as new_conn:
            after = _lock_cursor(new_conn, self.name)
            with self._legacy_reader() as legacy_conn:
                batch = _read_changes(legacy_conn, after, self.batch_size, self._mine)
                applied = apply_keys(legacy_conn, new_conn, self.spec, _group(batch))
            if batch:
                _save_cursor(new_conn, self.name, (batch[-1].xid, batch[-1].id))
        if batch and self.prune:
            self._prune((batch[-1].xid, batch[-1].id))
        self._count(applied)
        self.pending()
        return SyncResult(
            changes=len(batch),
            upserted=sum(n for (_, op), n in applied.items() if op == "upsert"),
            deleted=sum(n for (_, op), n in applied.items() if op == "delete"),
        )

    def _count(self, applied: Applied) -> None:
        self.metrics.sync_batches.labels(self.spec.name, "applied").inc()
        for (table, op), n in applied.items():
            self.metrics.sync_rows_applied.labels(self.spec.name, table, op).inc(n)

    def _prune(self, last: Cursor) -> None:
        # After the cursor commit: losing this delete to a crash only leaves rows the cursor
        # already skips.
        with self.legacy.begin() as conn:
            conn.execute(sa.delete(changes).where(sa.not_(_after(last)), self._mine))

    @property
    def _mine(self) -> sa.ColumnElement[bool]:
        """The changes of this job's tables. Several extractions share the legacy DB's change
        table, each job with its own cursor: one reads, and prunes, only what is its own, or
        it would delete changes another job has yet to copy."""
        return changes.c.table_name.in_([t.legacy.name for t in self.spec.tables])

    @contextmanager
    def _legacy_reader(self) -> Iterator[sa.Connection]:
        with self.legacy.connect() as conn:
            # readonly: a SQLite engine set up like the monolith's then begins DEFERRED and
            # does not queue for the legacy write lock.
            yield conn.execution_options(readonly=True)

    def _on_switch(self, old: Mode, new: Mode) -> None:
        if (old, new) == (Mode.SHARED, Mode.DUAL):
            # Writes are held: whatever the legacy DB got in shared mode reaches the new DB
            # before the first dual write, which could otherwise update a row not yet there.
            self.drain()


@dataclass(frozen=True)
class _Change:
    id: int
    xid: int
    table: str
    key: Key


def _after(cursor: Cursor) -> sa.ColumnElement[bool]:
    return sa.tuple_(changes.c.xid, changes.c.id) > sa.tuple_(
        sa.literal(cursor[0], sa.BigInteger), sa.literal(cursor[1], sa.BigInteger)
    )


def _horizon(conn: sa.Connection) -> int:
    if conn.dialect.name != "postgresql":
        return _NO_HORIZON
    return conn.exec_driver_sql(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    ).scalar_one()


def _read_changes(
    conn: sa.Connection, after: Cursor, limit: int, mine: sa.ColumnElement[bool]
) -> list[_Change]:
    horizon = _horizon(conn)
    query = (
        sa.select(changes.c.id, changes.c.xid, changes.c.table_name, changes.c.pk)
        .where(_after(after), changes.c.xid < horizon, mine)
        .order_by(changes.c.xid, changes.c.id)
        .limit(limit)
    )
    return [_Change(r.id, r.xid, r.table_name, decode_key(r.pk)) for r in conn.execute(query)]


def _group(batch: list[_Change]) -> dict[str, set[Key]]:
    grouped: dict[str, set[Key]] = {}
    for change in batch:
        grouped.setdefault(change.table, set()).add(change.key)
    return grouped


def _lock_cursor(conn: sa.Connection, job: str) -> Cursor:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(sync_cursor)
        .values(job=job, xid=0, change_id=0, updated_at=time.time())
        .on_conflict_do_nothing(index_elements=["job"])
    )
    # FOR UPDATE: a second instance of the job waits here instead of applying the same batch.
    row = conn.execute(
        sa.select(sync_cursor.c.xid, sync_cursor.c.change_id)
        .where(sync_cursor.c.job == job)
        .with_for_update()
    ).one()
    return row.xid, row.change_id


def _read_cursor(conn: sa.Connection, job: str) -> Cursor:
    row = conn.execute(
        sa.select(sync_cursor.c.xid, sync_cursor.c.change_id).where(sync_cursor.c.job == job)
    ).first()
    return (row.xid, row.change_id) if row else (0, 0)


def _save_cursor(conn: sa.Connection, job: str, cursor: Cursor) -> None:
    conn.execute(
        sa.update(sync_cursor)
        .where(sync_cursor.c.job == job)
        .values(xid=cursor[0], change_id=cursor[1], updated_at=time.time())
    )
