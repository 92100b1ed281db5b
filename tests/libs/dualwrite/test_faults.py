"""The talk's rule, demonstrated: the writes to the two DBs run inside one transaction.

The same faults hit a naive sequential dual write (commit legacy, then write and commit new)
and the one-transaction dual write. The naive one drifts, and the reconciler catches it; the
one-transaction one does not, on SQLite (ATTACH, one commit) and PostgreSQL (two-phase
commit, finished by recovery after a crash)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest

from libs.dualwrite.faults import InjectedFault, fail_at
from libs.dualwrite.modes import Mode, ModeSwitch
from libs.dualwrite.naive import NaiveSequentialWriter
from libs.dualwrite.reconcile import Reconciler
from libs.dualwrite.sync_job import SyncJob
from libs.dualwrite.twophase import install_decision_log
from libs.dualwrite.writer import DualWriter
from tests.libs.dualwrite.crasher import KILLED

# Dual writes on PostgreSQL commit in two phases (tests/conftest.py: two_phase).
pytestmark = pytest.mark.usefixtures("two_phase")


@pytest.fixture
def kim(migration) -> int:
    """A member present in both DBs, with 0 points, and the decision log in place."""
    member = migration.add_member("kim@example.com")
    SyncJob(migration.spec, migration.legacy, migration.new).drain()
    with migration.legacy.begin() as conn:
        install_decision_log(conn)
    return member


def add_points(member_id: int):
    return lambda t: t.update().where(t.c.id == member_id).values(points=t.c.points + 10)


def drift(migration) -> bool:
    return Reconciler(migration.spec, migration.legacy, migration.new).check().has_drift


def points(migration) -> tuple[int, int]:
    return migration.rows("legacy")[0][5], migration.rows("new")[0][5]


def crash(migration, kind: str, point: str, member_id: int) -> None:
    args = [kind, point, migration.legacy_url, migration.new_url, str(member_id)]
    done = subprocess.run(
        [sys.executable, "-m", "tests.libs.dualwrite.crasher", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == KILLED, done.stderr


def dual_writer(migration) -> DualWriter:
    return DualWriter(migration.spec, migration.legacy, migration.new, switch=ModeSwitch(Mode.DUAL))


def test_naive_dual_write_drifts_when_the_second_write_fails(migration, kim):
    writer = NaiveSequentialWriter(
        migration.spec, migration.legacy, migration.new, fault=fail_at("before_new_write")
    )

    with pytest.raises(InjectedFault):
        writer.write("members", add_points(kim))

    assert points(migration) == (10, 0)
    assert drift(migration)


def test_one_transaction_dual_write_does_not_drift_when_the_second_write_fails(migration, kim):
    writer = DualWriter(
        migration.spec,
        migration.legacy,
        migration.new,
        switch=ModeSwitch(Mode.DUAL),
        fault=fail_at("after_legacy_write"),
    )

    with pytest.raises(InjectedFault), writer.transaction() as tx:
        tx.write("members", add_points(kim))

    assert points(migration) == (0, 0)
    assert not drift(migration)
    writer.close()


def test_naive_dual_write_drifts_when_killed_between_the_commits(migration, kim):
    crash(migration, "naive", "after_legacy_commit", kim)

    assert points(migration) == (10, 0)
    assert drift(migration)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_one_transaction_dual_write_on_sqlite_does_not_drift_when_killed_before_commit(
    migration, kim
):
    crash(migration, "dual", "before_commit", kim)

    assert points(migration) == (0, 0)
    assert not drift(migration)


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.parametrize(
    ("point", "outcome", "in_doubt"),
    [
        ("after_prepare_legacy", "rolled_back", 1),
        ("after_prepare", "rolled_back", 2),
        ("after_decision", "committed", 2),
        ("after_commit_legacy", "committed", 1),
    ],
)
def test_two_phase_dual_write_killed_midway_is_finished_by_recovery_without_drift(
    migration, kim, point, outcome, in_doubt
):
    crash(migration, "dual", point, kim)
    writer = dual_writer(migration)

    report = writer.recover()

    assert len(getattr(report, outcome)) == in_doubt
    assert points(migration) == ((10, 10) if outcome == "committed" else (0, 0))
    assert not drift(migration)
    assert writer.recover() == type(report)(), "nothing left in doubt"
    writer.close()


def test_a_dual_write_loop_killed_at_random_moments_never_drifts(migration, kim):
    """Kills land anywhere, inside SQLite's multi-file commit or between PREPARE and COMMIT
    PREPARED; opening the files (SQLite) or recovery (PostgreSQL) settles every one."""
    rng = random.Random(7)
    for _ in range(3):
        args = ["loop", "none", migration.legacy_url, migration.new_url, str(kim)]
        crasher = [sys.executable, "-m", "tests.libs.dualwrite.crasher", *args]
        before = points(migration)[0]
        with subprocess.Popen(crasher) as writer_process:
            wait_for(
                lambda before=before: points(migration)[0] > before
            )  # writing, whatever start-up took
            time.sleep(rng.random() * 0.3)
            writer_process.send_signal(signal.SIGKILL)
        dual_writer(migration).recover()

        legacy_points, new_points = points(migration)
        assert legacy_points == new_points and legacy_points > before
        assert not drift(migration)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the writer made no progress"
        time.sleep(0.02)
