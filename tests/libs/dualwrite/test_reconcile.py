"""The reconciler finds drift between the legacy and new DB, reports it, and repairs it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from libs.dualwrite.canonical import checksum
from libs.dualwrite.cli import reconcile
from libs.dualwrite.reconcile import Reconciler
from libs.dualwrite.rows import upsert
from libs.dualwrite.sync_job import SyncJob
from tests.libs.dualwrite.conftest import create_schemas, make_engine


def ten_synced_members(migration) -> list[int]:
    ids = [migration.add_member(f"m{n}@example.com", points=n) for n in range(10)]
    SyncJob(migration.spec, migration.legacy, migration.new).drain()
    return ids


def drift_the_new_db(migration, ids: list[int]) -> None:
    members = migration.spec.table("members").new
    with migration.new.begin() as conn:
        conn.execute(members.update().where(members.c.id == ids[1]).values(points=999))
        conn.execute(members.delete().where(members.c.id == ids[7]))


def reconciler(migration, chunk_size: int = 3) -> Reconciler:
    return Reconciler(migration.spec, migration.legacy, migration.new, chunk_size=chunk_size)


def test_equal_dbs_report_no_drift(migration):
    ten_synced_members(migration)

    report = reconciler(migration).check()

    assert not report.has_drift
    assert [t.chunks for t in report.tables] == [4, 1]
    assert "members              ok" in report.render()


def test_drift_is_reported_by_chunk_with_sample_rows(migration):
    ids = ten_synced_members(migration)
    drift_the_new_db(migration, ids)

    report = reconciler(migration).check()

    members = report.tables[0]
    assert report.has_drift and (members.source_count, members.target_count) == (10, 9)
    assert [(c.changed, c.missing) for c in members.drifted] == [
        ([(ids[1],)], []),
        ([], [(ids[7],)]),
    ]
    assert members.drifted[0].samples[0].target[5] == 999
    assert "missing in target" in report.render()


def test_repair_makes_the_new_db_equal_to_the_legacy_db(migration):
    ids = ten_synced_members(migration)
    drift_the_new_db(migration, ids)
    extra = migration.spec.table("members").new
    with migration.new.begin() as conn:
        row = dict(zip([c.name for c in extra.c], migration.rows("legacy")[0], strict=True))
        conn.execute(extra.insert().values({**row, "id": 1000, "email": "ghost@example.com"}))

    repaired = reconciler(migration).repair()

    assert repaired.tables[0].repaired == 3
    assert not reconciler(migration).check().has_drift
    assert migration.rows("new") == migration.rows("legacy")


def test_each_check_sets_the_drift_rows_gauge_and_counts_its_outcome(migration):
    ids = ten_synced_members(migration)
    registry = CollectorRegistry()
    name = migration.spec.name

    def sample(metric: str, **labels: str) -> float | None:
        return registry.get_sample_value(metric, {"migration": name, **labels})

    Reconciler(migration.spec, migration.legacy, migration.new, registry=registry).check()
    assert sample("shop_reconcile_drift_rows") == 0
    assert sample("shop_reconcile_runs_total", outcome="clean") == 1

    drift_the_new_db(migration, ids)  # one row changed, one missing
    Reconciler(migration.spec, migration.legacy, migration.new, registry=registry).repair()
    assert sample("shop_reconcile_runs_total", outcome="drift") == 1
    assert sample("shop_reconcile_drift_rows") == 0  # repaired: nothing differs any more

    drift_the_new_db(migration, ids)
    report = Reconciler(migration.spec, migration.legacy, migration.new, registry=registry).check()
    assert report.rows == 2 and sample("shop_reconcile_drift_rows") == 2
    assert sample("shop_reconcile_runs_total", outcome="drift") == 2


def test_the_cli_exits_non_zero_on_drift_and_zero_once_repaired(migration):
    drift_the_new_db(migration, ten_synced_members(migration))
    args = [
        "--spec",
        "tests.libs.dualwrite.schema:MEMBERS",
        "--legacy-url",
        migration.legacy_url,
        "--new-url",
        migration.new_url,
    ]

    found = CliRunner().invoke(reconcile, args)
    repaired = CliRunner().invoke(reconcile, [*args, "--repair"])
    clean = CliRunner().invoke(reconcile, args)

    assert found.exit_code == 1 and "DRIFT" in found.output
    assert repaired.exit_code == 0, repaired.output
    assert clean.exit_code == 0 and "DRIFT" not in clean.output


@pytest.mark.parametrize("backend", ["postgres"])
def test_the_same_rows_hash_equally_on_sqlite_and_postgresql(migration, tmp_path):
    ten_synced_members(migration)
    sqlite_legacy = make_engine(f"sqlite:///{tmp_path / 'copy.db'}")
    create_schemas(sqlite_legacy, make_engine(f"sqlite:///{tmp_path / 'unused.db'}"))
    for table in migration.spec.tables:
        with sqlite_legacy.begin() as conn:
            upsert(conn, table.legacy_side, migration.rows("legacy", table.name))

    report = Reconciler(migration.spec, sqlite_legacy, migration.new, chunk_size=4).check()

    assert not report.has_drift, report.render()
    sqlite_legacy.dispose()


def test_canonical_values_ignore_how_each_db_spells_them():
    when = datetime(2024, 5, 1, 12, 0, 0, 5, tzinfo=UTC)
    assert checksum([(1, when, 10.0, True)]) == checksum(
        [(1, when.replace(tzinfo=None), Decimal("10"), 1)]
    )
    assert checksum([(1, 10.5)]) != checksum([(1, 10.4)])
