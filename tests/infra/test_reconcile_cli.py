"""`shop reconcile members`: the reconciler on the configured DBs, exit 1 on drift."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from click.testing import CliRunner

from infra.cli import main
from libs.db import make_engine
from monolith.adapters.migrate import upgrade as upgrade_legacy
from services.member.adapters.migrate import upgrade as upgrade_member


def test_reconcile_exits_1_on_drift_and_repair_ends_it(tmp_path):
    legacy = make_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    member = make_engine(f"sqlite:///{tmp_path / 'member.db'}")
    upgrade_legacy(legacy)
    upgrade_member(member)
    env = {"SHOP_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    assert runner.invoke(main, ["reconcile", "members"], env=env).exit_code == 0

    with legacy.begin() as conn:  # a legacy row the member DB never got
        conn.execute(
            sa.text(
                "INSERT INTO members (email, password_hash, name, points, created_at, updated_at)"
                " VALUES ('a@example.com', 'x', 'A', 0, :now, :now)"
            ),
            {"now": datetime.now(UTC)},
        )
    drift = runner.invoke(main, ["reconcile", "members"], env=env)
    assert drift.exit_code == 1 and "DRIFT" in drift.output
    repaired = runner.invoke(main, ["reconcile", "members", "--repair"], env=env)
    assert repaired.exit_code == 0, repaired.output
    assert runner.invoke(main, ["reconcile", "members"], env=env).exit_code == 0
    legacy.dispose()
    member.dispose()
