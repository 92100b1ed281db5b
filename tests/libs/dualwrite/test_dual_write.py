"""The writer in each mode: shared (legacy only), dual (both, one transaction), single."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from libs.dualwrite.faults import InjectedFault, fail_at
from libs.dualwrite.freeze import FrozenTableError, install_freeze_triggers
from libs.dualwrite.modes import Mode, ModeSwitch
from libs.dualwrite.sync_job import SyncJob
from libs.dualwrite.twophase import install_decision_log
from libs.dualwrite.writer import DivergedWrite, DualWriter
from tests.libs.dualwrite.schema import ledger_values, member_values

# Dual writes on PostgreSQL commit in two phases (tests/conftest.py: two_phase).
pytestmark = pytest.mark.usefixtures("two_phase")


@pytest.fixture
def writer_for(migration):
    made: list[DualWriter] = []

    def make(mode: Mode = Mode.DUAL, **options) -> DualWriter:
        with migration.legacy.begin() as conn:
            install_decision_log(conn)
        writer = DualWriter(
            migration.spec, migration.legacy, migration.new, switch=ModeSwitch(mode), **options
        )
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close()


def add_points(member_id: int, points: int):
    return lambda t: t.update().where(t.c.id == member_id).values(points=t.c.points + points)


def synced(migration) -> None:
    SyncJob(migration.spec, migration.legacy, migration.new).drain()


def test_shared_mode_writes_the_legacy_db_only(migration, writer_for):
    writer = writer_for(Mode.SHARED)
    with writer.transaction() as tx:
        tx.write("members", lambda t: t.insert().values(member_values("kim@example.com")))

    assert len(migration.rows("legacy")) == 1
    assert migration.rows("new") == []


def test_dual_write_reaches_both_dbs_with_the_same_keys(migration, writer_for):
    writer = writer_for(Mode.DUAL, registry=migration.registry)
    values = member_values("kim@example.com")  # once: the builder runs once per DB
    with writer.transaction() as tx:
        kim = tx.write("members", lambda t: t.insert().values(values)).inserted_primary_key[0]
        entry = ledger_values(kim, 10)
        tx.write("point_ledger", lambda t: t.insert().values(entry))
        tx.write("members", add_points(kim, 10))

    assert migration.rows("new") == migration.rows("legacy")
    assert migration.rows("new", "point_ledger") == migration.rows("legacy", "point_ledger")
    assert migration.rows("new")[0][5] == 10
    committed = migration.metric(
        "shop_dual_write_transactions_total", migration="members", mode="dual", outcome="committed"
    )
    assert committed == 1


def test_a_failing_second_write_leaves_neither_db_changed(migration, writer_for):
    kim = migration.add_member("kim@example.com")
    synced(migration)
    writer = writer_for(Mode.DUAL, fault=fail_at("after_legacy_write"))

    with pytest.raises(InjectedFault), writer.transaction() as tx:
        tx.write("members", add_points(kim, 10))

    assert migration.rows("legacy")[0][5] == 0
    assert migration.rows("new") == migration.rows("legacy")


def test_a_write_that_finds_the_dbs_already_apart_is_refused(migration, writer_for):
    kim = migration.add_member("kim@example.com")  # never synced: the new DB lacks it
    writer = writer_for(Mode.DUAL)

    with pytest.raises(DivergedWrite), writer.transaction() as tx:
        tx.write("members", add_points(kim, 10))

    assert migration.rows("legacy")[0][5] == 0


def test_single_mode_writes_the_new_db_and_reads_from_it(migration, writer_for):
    writer = writer_for(Mode.SINGLE)
    with writer.transaction() as tx:
        tx.write("members", lambda t: t.insert().values(member_values("kim@example.com")))
        emails = tx.read("members", lambda t: sa.select(t.c.email)).scalars().all()

    assert emails == ["kim@example.com"]
    assert migration.rows("legacy") == []


def test_frozen_legacy_tables_refuse_writes_through_the_process(migration, writer_for):
    writer_for(Mode.SINGLE)
    members = migration.spec.table("members").legacy

    with pytest.raises(FrozenTableError):
        migration.legacy_exec(members.insert().values(member_values("kim@example.com")))


def test_freeze_triggers_refuse_writes_from_anywhere(migration):
    migration.add_member("kim@example.com")
    with migration.legacy.begin() as conn:
        install_freeze_triggers(conn, migration.spec)

    with pytest.raises(sa.exc.DBAPIError, match="members is frozen"):
        migration.legacy_exec(sa.text("DELETE FROM members"))


def test_the_mode_moves_one_step_at_a_time():
    switch = ModeSwitch(Mode.SHARED)
    with pytest.raises(ValueError, match="one step at a time"):
        switch.switch_to(Mode.SINGLE)
    switch.switch_to(Mode.DUAL)
    switch.switch_to(Mode.SINGLE)
    switch.switch_to(Mode.DUAL)
    assert switch.mode is Mode.DUAL


def test_a_switch_waits_for_the_write_in_flight():
    switch = ModeSwitch(Mode.SHARED)
    seen: list[Mode] = []
    with switch.holding() as mode:
        mover = threading.Thread(target=switch.switch_to, args=(Mode.DUAL,))
        mover.start()
        time.sleep(0.1)
        seen.append(switch.mode)
        assert mode is Mode.SHARED
    mover.join(5)
    assert seen == [Mode.SHARED]
    assert switch.mode is Mode.DUAL


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_attached_new_db_uses_the_rollback_journal(migration, writer_for):
    writer = writer_for(Mode.DUAL)
    with writer._attached.connect() as conn:
        modes = [
            conn.exec_driver_sql(f"PRAGMA {s}.journal_mode").scalar() for s in ("main", "newdb")
        ]
    assert modes == ["delete", "delete"]
