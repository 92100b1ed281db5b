"""Each data mode sends the service's writes where the talk says: shared -> the legacy DB (the
sync job copies them on), dual -> both DBs in one transaction, single -> the member DB only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tests.services.member.conftest import emails, eventually

# Dual writes on PostgreSQL commit in two phases (tests/conftest.py: two_phase).
pytestmark = pytest.mark.usefixtures("two_phase")


def test_in_shared_mode_a_write_lands_in_the_legacy_db_and_the_sync_job_copies_it(member_service):
    with member_service("shared") as service:
        email, _ = service.signup("Kim")
        assert email in emails(service.legacy)
        assert eventually(lambda: email in emails(service.new))
        applied = (
            'shop_sync_rows_applied_total{migration="members",op="upsert",table="members"} 1.0'
        )
        # Counted just after the batch commits: the row can be seen a moment before the count.
        assert eventually(lambda: applied in service.http.get("/metrics").text)


def test_in_shared_mode_the_sync_job_also_copies_what_the_monolith_writes(member_service):
    with member_service("shared") as service:
        now = datetime.now(UTC)
        with service.legacy.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO members (email, password_hash, name, points, created_at,"
                    " updated_at) VALUES ('legacy@example.com', 'x', 'Old', 0, :now, :now)"
                ),
                {"now": now},
            )
        assert eventually(lambda: "legacy@example.com" in emails(service.new))


def test_in_dual_mode_a_write_is_in_both_dbs_as_soon_as_it_is_answered(member_service):
    with member_service("dual") as service:
        email, member_id = service.signup("Lee")
        assert email in emails(service.legacy)
        assert email in emails(service.new)
        assert row(service.legacy, member_id) == row(service.new, member_id)


def test_in_single_mode_a_write_reaches_the_member_db_only(member_service):
    with member_service("single") as service:
        email, _ = service.signup("Park")
        assert email in emails(service.new)
        assert emails(service.legacy) == set()


def row(engine: sa.Engine, member_id: int) -> tuple:
    with engine.connect() as conn:
        return tuple(
            conn.execute(sa.text("SELECT * FROM members WHERE id = :id"), {"id": member_id}).one()
        )
