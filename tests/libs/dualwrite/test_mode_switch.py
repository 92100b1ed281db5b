"""The live path shared -> dual -> single, and the rollback steps back, with the sync job
and the writer sharing one switch."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from libs.dualwrite.cutover import DriftBlocksCutover
from libs.dualwrite.modes import Mode, ModeSwitch
from libs.dualwrite.reconcile import Reconciler
from libs.dualwrite.sync_job import SyncJob
from libs.dualwrite.twophase import install_decision_log
from libs.dualwrite.writer import DualWriter
from tests.libs.dualwrite.schema import member_values

# Dual writes on PostgreSQL commit in two phases (tests/conftest.py: two_phase).
pytestmark = pytest.mark.usefixtures("two_phase")


@pytest.fixture
def stage(migration):
    with migration.legacy.begin() as conn:
        install_decision_log(conn)
    switch = ModeSwitch(Mode.SHARED)
    job = SyncJob(migration.spec, migration.legacy, migration.new, switch=switch)
    writer = DualWriter(migration.spec, migration.legacy, migration.new, switch=switch)
    yield switch, job, writer
    writer.close()


def signup(writer: DualWriter, email: str) -> int:
    values = member_values(email)
    with writer.transaction() as tx:
        return tx.write("members", lambda t: t.insert().values(values)).inserted_primary_key[0]


def no_drift(migration) -> bool:
    return not Reconciler(migration.spec, migration.legacy, migration.new).check().has_drift


def test_members_move_from_shared_to_dual_to_single_without_drift(migration, stage):
    switch, job, writer = stage
    signup(writer, "shared@example.com")
    switch.switch_to(Mode.DUAL)
    signup(writer, "dual@example.com")
    assert no_drift(migration)

    switch.switch_to(Mode.SINGLE)
    single = signup(writer, "single@example.com")

    assert single == 3, "the new DB's key sequence continues after the copied keys"
    assert [r[1] for r in migration.rows("legacy")] == ["shared@example.com", "dual@example.com"]
    with pytest.raises(sa.exc.DBAPIError, match="frozen"):
        migration.legacy_exec(sa.text("UPDATE members SET points = 1"))
    assert job.run_once().skipped


def test_rolling_back_from_single_copies_its_rows_to_the_legacy_db(migration, stage):
    switch, job, writer = stage
    switch.switch_to(Mode.DUAL)
    switch.switch_to(Mode.SINGLE)
    signup(writer, "single@example.com")

    switch.switch_to(Mode.DUAL)
    assert no_drift(migration)
    signup(writer, "dual-again@example.com")
    switch.switch_to(Mode.SHARED)
    signup(writer, "shared-again@example.com")
    job.run_once()

    assert no_drift(migration)
    assert len(migration.rows("legacy")) == 3


def test_a_cutover_to_single_is_refused_while_the_dbs_disagree(migration, stage):
    switch, _job, _writer = stage
    switch.switch_to(Mode.DUAL)
    migration.add_member("behind-the-writers-back@example.com")

    with pytest.raises(DriftBlocksCutover, match="DRIFT"):
        switch.switch_to(Mode.SINGLE)

    assert switch.mode is Mode.DUAL


def test_a_refused_cutover_leaves_its_drift_on_the_writers_registry(migration):
    with migration.legacy.begin() as conn:
        install_decision_log(conn)
    switch, registry = ModeSwitch(Mode.DUAL), CollectorRegistry()
    writer = DualWriter(
        migration.spec, migration.legacy, migration.new, switch=switch, registry=registry
    )
    try:
        migration.add_member("behind-the-writers-back@example.com")
        with pytest.raises(DriftBlocksCutover):
            switch.switch_to(Mode.SINGLE)
    finally:
        writer.close()

    labels = {"migration": migration.spec.name}
    assert registry.get_sample_value("shop_reconcile_drift_rows", labels) == 1
    runs = registry.get_sample_value("shop_reconcile_runs_total", labels | {"outcome": "drift"})
    assert runs == 1
