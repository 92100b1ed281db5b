"""The shared-DB stage: the batch sync job copies legacy changes to the new DB."""

from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from libs.dualwrite import sync_job as sync_job_module
from libs.dualwrite.modes import Mode, ModeSwitch
from libs.dualwrite.sync_job import SyncJob, sync_cursor
from tests.libs.dualwrite.schema import ledger_values, member_values


def members_of(migration):
    return migration.spec.table("members").legacy


def test_inserts_updates_and_deletes_reach_the_new_db(migration):
    members = members_of(migration)
    kim, lee, park = (migration.add_member(f"{n}@example.com") for n in ("kim", "lee", "park"))
    job = SyncJob(migration.spec, migration.legacy, migration.new, registry=migration.registry)
    job.run_once()
    migration.legacy_exec(members.update().where(members.c.id == lee).values(points=70))
    migration.legacy_exec(members.delete().where(members.c.id == park))

    result = job.run_once()

    assert result.upserted == 1 and result.deleted == 1
    assert migration.rows("new") == migration.rows("legacy")
    assert [r[0] for r in migration.rows("new")] == [kim, lee]


def test_child_rows_follow_their_parents(migration):
    kim = migration.add_member("kim@example.com")
    ledger = migration.spec.table("point_ledger").legacy
    migration.legacy_exec(ledger.insert().values(ledger_values(kim, 10)))

    SyncJob(migration.spec, migration.legacy, migration.new).drain()

    assert migration.rows("new", "point_ledger") == migration.rows("legacy", "point_ledger")


def test_running_the_same_changes_again_leaves_the_same_state(migration):
    members = members_of(migration)
    kim = migration.add_member("kim@example.com")
    migration.legacy_exec(members.update().where(members.c.id == kim).values(points=5))
    job = SyncJob(migration.spec, migration.legacy, migration.new, prune=False)
    job.drain()
    with migration.new.begin() as conn:
        conn.execute(sync_cursor.update().values(xid=0, change_id=0))

    assert job.drain() == 2
    assert migration.rows("new") == migration.rows("legacy")


def test_a_crash_before_the_cursor_commit_leaves_nothing_half_applied(migration, monkeypatch):
    for n in range(5):
        migration.add_member(f"m{n}@example.com")
    job = SyncJob(migration.spec, migration.legacy, migration.new, batch_size=2)

    def crash(*_args):
        raise RuntimeError("killed between apply and cursor update")

    monkeypatch.setattr(sync_job_module, "_save_cursor", crash)
    with pytest.raises(RuntimeError):
        job.run_once()
    assert migration.rows("new") == []

    monkeypatch.undo()
    assert job.drain() == 5
    assert migration.rows("new") == migration.rows("legacy")


def test_a_restarted_job_resumes_where_the_last_one_stopped(migration):
    for n in range(7):
        migration.add_member(f"m{n}@example.com")
    first = SyncJob(migration.spec, migration.legacy, migration.new, batch_size=3)
    assert first.run_once().changes == 3

    restarted = SyncJob(
        migration.spec, migration.legacy, migration.new, batch_size=3, registry=migration.registry
    )

    assert restarted.drain() == 4
    assert migration.rows("new") == migration.rows("legacy")
    applied = migration.metric(
        "shop_sync_rows_applied_total", migration="members", table="members", op="upsert"
    )
    assert applied == 4


def test_lag_and_pending_changes_are_exported_as_metrics(migration):
    job = SyncJob(migration.spec, migration.legacy, migration.new, registry=migration.registry)
    migration.add_member("kim@example.com")
    migration.add_member("lee@example.com")

    pending, lag = job.pending()

    assert pending == 2 and lag >= 0
    assert migration.metric("shop_sync_pending_changes", migration="members") == 2
    job.run_once()
    assert migration.metric("shop_sync_pending_changes", migration="members") == 0
    assert migration.metric("shop_sync_lag_seconds", migration="members") == 0


def test_the_job_stands_still_outside_the_shared_mode(migration):
    switch = ModeSwitch(Mode.SHARED)
    job = SyncJob(migration.spec, migration.legacy, migration.new, switch=switch)
    migration.add_member("kim@example.com")
    switch.switch_to(Mode.DUAL)
    assert migration.rows("new") == migration.rows("legacy"), "the switch drains the job first"
    migration.add_member("lee@example.com")

    assert job.run_once().skipped
    assert len(migration.rows("new")) == 1


async def test_the_loop_keeps_syncing_until_stopped(migration):
    job = SyncJob(migration.spec, migration.legacy, migration.new)
    stop = asyncio.Event()
    loop = asyncio.create_task(job.run(interval=0.05, stop=stop))
    await asyncio.to_thread(migration.add_member, "kim@example.com")
    for _ in range(100):
        if await asyncio.to_thread(migration.rows, "new"):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert migration.rows("new") == migration.rows("legacy")


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_change_committed_late_by_an_older_transaction_is_not_skipped(migration):
    members = members_of(migration)
    job = SyncJob(migration.spec, migration.legacy, migration.new)
    with migration.legacy.connect() as older:
        older.begin()
        older.execute(members.insert().values(member_values("early@example.com")))
        migration.add_member("late@example.com")  # commits first, with a larger id
        assert job.run_once().changes == 0, "held back behind the running transaction"
        older.commit()

    job.drain()

    assert {r[1] for r in migration.rows("new")} == {"early@example.com", "late@example.com"}


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_child_captured_before_its_parent_brings_the_parent_along(migration):
    members, ledger = members_of(migration), migration.spec.table("point_ledger").legacy
    job = SyncJob(migration.spec, migration.legacy, migration.new, batch_size=2)
    with migration.legacy.connect() as older:
        older.begin()
        older.execute(members.insert().values(member_values("first@example.com")))  # takes its xid
        parent = migration.add_member("parent@example.com")  # a younger transaction
        older.execute(ledger.insert().values(ledger_values(parent, 5)))
        older.commit()

    assert job.run_once().changes == 2  # the older transaction: its member and the child
    assert migration.rows("new", "point_ledger") == migration.rows("legacy", "point_ledger")
    job.drain()
    assert migration.rows("new") == migration.rows("legacy")


def test_concurrent_batches_do_not_apply_twice(migration):
    """Two instances of the job drain one cursor at once: every change is applied by exactly
    one of them. Applying is an idempotent upsert, so the rows alone cannot show a double
    application; the changes each instance reports applying, and the rows-applied counter,
    can."""
    for n in range(20):
        migration.add_member(f"m{n}@example.com")
    registry = CollectorRegistry()
    job = SyncJob(migration.spec, migration.legacy, migration.new, batch_size=5, registry=registry)
    applied: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def drain() -> None:
        start.wait()
        try:
            applied.append(job.drain())
        except sa.exc.OperationalError as exc:  # SQLite may refuse the second writer outright
            errors.append(exc)

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if migration.legacy.dialect.name == "postgresql":
        assert errors == []  # the cursor's row lock makes the second instance wait, not fail
    applied.append(job.drain())
    assert sum(applied) == 20, applied
    rows = registry.get_sample_value(
        "shop_sync_rows_applied_total",
        {"migration": job.spec.name, "table": "members", "op": "upsert"},
    )
    assert rows == 20
    assert migration.rows("new") == migration.rows("legacy")


@pytest.mark.parametrize("backend", ["postgres"])
def test_draining_waits_for_an_open_transaction_instead_of_stopping_early(migration):
    members = members_of(migration)
    job = SyncJob(migration.spec, migration.legacy, migration.new)
    with migration.legacy.connect() as older:
        older.begin()
        older.execute(members.insert().values(member_values("first@example.com")))
        migration.add_member("later@example.com")  # committed, but above the horizon
        threading.Timer(0.3, older.commit).start()

        assert job.drain(timeout=10) == 2

    assert migration.rows("new") == migration.rows("legacy")


@pytest.mark.parametrize("backend", ["postgres"])
def test_draining_gives_up_with_a_timeout_while_a_transaction_stays_open(migration):
    members = members_of(migration)
    job = SyncJob(migration.spec, migration.legacy, migration.new)
    with migration.legacy.connect() as older:
        older.begin()
        older.execute(members.insert().values(member_values("first@example.com")))
        migration.add_member("later@example.com")
        with pytest.raises(TimeoutError, match="still pending"):
            job.drain(timeout=0.3)
        older.rollback()


def test_a_job_reads_and_prunes_only_its_own_tables_changes(migration):
    """Several extractions share the legacy DB's change table (members, then orders and
    payments), each job with its own cursor: a job that pruned every change up to its cursor
    deleted the others' before they were copied, and their rows never reached their DB."""
    from libs.dualwrite.capture import changes

    kim = migration.add_member("kim@example.com")
    # A change another extraction's capture recorded, between two of this one's.
    migration.legacy_exec(
        changes.insert().values(xid=0, table_name="orders", pk="[7]", op="I", changed_at=0.0)
    )
    migration.add_member("lee@example.com")
    job = SyncJob(migration.spec, migration.legacy, migration.new)

    job.drain()

    with migration.legacy.connect() as conn:
        left = conn.execute(sa.select(changes.c.table_name, changes.c.pk)).all()
    assert left == [("orders", "[7]")]  # not pruned: the orders job has yet to copy it
    assert job.pending()[0] == 0  # nor counted as this job's lag
    assert [r[0] for r in migration.rows("new")] == [kim, kim + 1]
