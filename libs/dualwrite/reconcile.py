"""The reconciler: do the legacy DB and the new DB hold the same rows?

Per moving table: row counts, then checksums of chunks of rows by key range, and for each
chunk whose checksums differ, the rows that differ (a sample in the report). Drift is
reported as data; `repair()` then copies the source's rows over the target's for the
drifting chunks (insert, update and delete).

Rows are hashed here, after canonicalisation, rather than inside each DB: hashing in SQL
would need one expression per dialect and type that agree byte for byte. The price is that
every row travels once; chunks keep the memory flat.

Each check sets `shop_reconcile_drift_rows` and counts a run in `shop_reconcile_runs_total`
on the registry it is given (the process's, where a cutover reconciles)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import pairwise

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from libs.dualwrite import rows
from libs.dualwrite.canonical import canonical_row, checksum
from libs.dualwrite.freeze import UNFREEZE
from libs.dualwrite.metrics import migration_metrics
from libs.dualwrite.rows import Key, Row, Side
from libs.dualwrite.spec import ExternalReference, MigrationSpec, TableSpec


@dataclass(frozen=True)
class RowDiff:
    key: Key
    source: Row | None
    target: Row | None


@dataclass
class ChunkDrift:
    low: Key | None
    high: Key | None
    missing: list[Key] = field(default_factory=list)  # in the source only
    extra: list[Key] = field(default_factory=list)  # in the target only
    changed: list[Key] = field(default_factory=list)
    samples: list[RowDiff] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)


@dataclass
class TableDrift:
    table: str
    source_count: int
    target_count: int
    chunks: int
    drifted: list[ChunkDrift] = field(default_factory=list)
    repaired: int = 0

    @property
    def has_drift(self) -> bool:
        return bool(self.drifted) or self.source_count != self.target_count


@dataclass
class DanglingReference:
    """Values of a moved column that name no row of the legacy table it refers to."""

    reference: str  # "order_lines.product_id -> products.id"
    count: int
    samples: list = field(default_factory=list)


@dataclass
class DriftReport:
    migration: str
    direction: str
    tables: list[TableDrift]
    dangling: list[DanglingReference] = field(default_factory=list)

    @property
    def has_drift(self) -> bool:
        return any(t.has_drift for t in self.tables) or bool(self.dangling)

    @property
    def rows(self) -> int:
        """Rows that differ: missing, extra or changed, and dangling values."""
        differ = sum(c.rows for t in self.tables for c in t.drifted)
        return differ + sum(d.count for d in self.dangling)

    def to_dict(self) -> dict:
        return {"has_drift": self.has_drift, **asdict(self)}

    def render(self) -> str:
        lines = [f"reconcile {self.migration} ({self.direction})"]
        for t in self.tables:
            state = "DRIFT" if t.has_drift else "ok"
            rows_off = sum(c.rows for c in t.drifted)
            lines.append(
                f"  {t.table:<20} {state:<5} source {t.source_count} rows, target "
                f"{t.target_count} rows, {len(t.drifted)}/{t.chunks} chunks differ "
                f"({rows_off} rows){f', repaired {t.repaired}' if t.repaired else ''}"
            )
            lines += [f"    {_describe(s)}" for c in t.drifted for s in c.samples]
        for d in self.dangling:
            lines.append(
                f"  {d.reference}: DRIFT {d.count} value(s) name no legacy row, e.g. {d.samples}"
            )
        return "\n".join(lines)


def _describe(diff: RowDiff) -> str:
    if diff.target is None:
        assert diff.source is not None  # a sampled key is in the source or in the target
        return f"key {list(diff.key)}: missing in target; source {canonical_row(diff.source)}"
    if diff.source is None:
        return f"key {list(diff.key)}: only in target {canonical_row(diff.target)}"
    return (
        f"key {list(diff.key)}: source {canonical_row(diff.source)} "
        f"!= target {canonical_row(diff.target)}"
    )


class Reconciler:
    def __init__(
        self,
        spec: MigrationSpec,
        source: sa.Engine,
        target: sa.Engine,
        *,
        direction: str = "legacy->new",
        chunk_size: int = 1000,
        samples: int = 5,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if direction not in ("legacy->new", "new->legacy"):
            raise ValueError(f"unknown direction {direction}")
        self.spec, self.source, self.target = spec, source, target
        self.direction, self.chunk_size, self.samples = direction, chunk_size, samples
        self.metrics = migration_metrics(registry)

    def check(self) -> DriftReport:
        tables = [self._check_table(t) for t in self.spec.tables]
        dangling = [d for r in self.spec.external_references() if (d := self._dangling(r))]
        report = DriftReport(self.spec.name, self.direction, tables, dangling)
        outcome = "drift" if report.has_drift else "clean"
        self.metrics.reconcile_runs.labels(self.spec.name, outcome).inc()
        self.metrics.reconcile_drift_rows.labels(self.spec.name).set(report.rows)
        return report

    def _dangling(self, ref: ExternalReference, batch: int = 1000) -> DanglingReference | None:
        """The new DB's values of a column that refers into a table left in the legacy DB,
        looked up there a batch at a time."""
        legacy, new = (
            (self.source, self.target)
            if self.direction == "legacy->new"
            else (self.target, self.source)
        )
        column = ref.table.new.c[ref.new_column]
        with new.connect() as conn:
            values = list(conn.scalars(sa.select(column).where(column.is_not(None)).distinct()))
        referred = sa.table(ref.referred_table, sa.column(ref.referred_column))
        key = referred.c[ref.referred_column]
        missing = []
        with legacy.connect() as conn:
            for start in range(0, len(values), batch):
                chunk = values[start : start + batch]
                found = set(conn.scalars(sa.select(key).where(key.in_(chunk))))
                missing += [v for v in chunk if v not in found]
        if not missing:
            return None
        return DanglingReference(ref.describe(), len(missing), sorted(missing)[: self.samples])

    def repair(self) -> DriftReport:
        """Check, then make the target's drifting chunks equal to the source's: parents'
        rows are written before children's, children's extra rows removed before parents'."""
        report = self.check()
        drifts = {t.table: t for t in report.tables}
        with self.target.connect() as conn, conn.begin():
            conn = conn.execution_options(**{UNFREEZE: True})
            for table in self.spec.tables:
                drifts[table.name].repaired += self._upsert(conn, table, drifts[table.name])
            for table in reversed(self.spec.tables):
                drifts[table.name].repaired += self._delete(conn, table, drifts[table.name])
        # The rows are equal now; a dangling value is not the repair's to fix.
        left = sum(d.count for d in report.dangling)
        self.metrics.reconcile_drift_rows.labels(self.spec.name).set(left)
        return report

    def _sides(self, table: TableSpec) -> tuple[Side, Side]:
        if self.direction == "legacy->new":
            return table.legacy_side, table.new_side
        return table.new_side, table.legacy_side

    def _check_table(self, table: TableSpec) -> TableDrift:
        source_side, target_side = self._sides(table)
        with self.source.connect() as source, self.target.connect() as target:
            drift = TableDrift(
                table.name, _count(source, source_side), _count(target, target_side), 0
            )
            bounds = [None, *rows.boundaries(source, source_side, self.chunk_size), None]
            for low, high in pairwise(bounds):
                drift.chunks += 1
                theirs = rows.scan(source, source_side, low, high)
                ours = rows.scan(target, target_side, low, high)
                if checksum(theirs) != checksum(ours):
                    drift.drifted.append(self._diff(source_side, low, high, theirs, ours))
        return drift

    def _diff(self, side: Side, low, high, source: list[Row], target: list[Row]) -> ChunkDrift:
        theirs = {side.key_of(r): r for r in source}
        ours = {side.key_of(r): r for r in target}
        chunk = ChunkDrift(low, high)
        chunk.missing = sorted(theirs.keys() - ours.keys())
        chunk.extra = sorted(ours.keys() - theirs.keys())
        chunk.changed = sorted(
            k
            for k in theirs.keys() & ours.keys()
            if canonical_row(theirs[k]) != canonical_row(ours[k])
        )
        for key in (chunk.missing + chunk.changed + chunk.extra)[: self.samples]:
            chunk.samples.append(RowDiff(key, theirs.get(key), ours.get(key)))
        return chunk

    def _upsert(self, conn: sa.Connection, table: TableSpec, drift: TableDrift) -> int:
        source_side, target_side = self._sides(table)
        keys = [k for c in drift.drifted for k in c.missing + c.changed]
        with self.source.connect() as source:
            fresh = rows.fetch(source, source_side, keys)
        rows.upsert(conn, target_side, list(fresh.values()))
        return len(fresh)

    def _delete(self, conn: sa.Connection, table: TableSpec, drift: TableDrift) -> int:
        _, target_side = self._sides(table)
        return rows.delete(conn, target_side, [k for c in drift.drifted for k in c.extra])


def _count(conn: sa.Connection, side: Side) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(side.table)).scalar_one()
