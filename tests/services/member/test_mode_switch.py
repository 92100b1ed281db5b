"""The data mode moves live through the admin API, one step at a time, and a refused move
changes nothing."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from libs.extraction import FrozenLegacyTables, extraction_runtime
from services.member.adapters.migrate import upgrade
from services.member.adapters.migration import MEMBERS as MEMBERS_SPEC
from tests.services.member.conftest import ADMIN, emails, running

# Dual writes on PostgreSQL commit in two phases (tests/conftest.py: two_phase).
pytestmark = pytest.mark.usefixtures("two_phase")


def mode_metric(service, mode: str) -> str:
    line = f'shop_dual_write_mode{{migration="members",mode="{mode}"}}'
    found = [x for x in service.http.get("/metrics").text.splitlines() if x.startswith(line)]
    return found[0].split()[-1]


def test_the_mode_moves_from_shared_through_dual_to_single_under_writes(member_service):
    with member_service("shared") as service:
        shared_email, _ = service.signup("Kim")

        to_dual = service.move("dual")
        assert to_dual.status_code == 200, to_dual.text
        assert to_dual.json()["data"] | {} == {
            "migration": "members",
            "mode": "dual",
            "previous": "shared",
            "changed": True,
        }
        # The switch drained the sync job: the shared-mode write is already copied.
        assert shared_email in emails(service.new)
        dual_email, _ = service.signup("Lee")
        assert dual_email in emails(service.legacy) & emails(service.new)

        assert service.move("single").status_code == 200
        legacy_before = emails(service.legacy)
        single_email, _ = service.signup("Park")
        assert single_email in emails(service.new)
        assert emails(service.legacy) == legacy_before

        assert (
            service.http.get("/admin/data-mode", headers=ADMIN).json()["data"]["mode"] == "single"
        )
        assert (mode_metric(service, "single"), mode_metric(service, "shared")) == ("1.0", "0.0")


def test_single_mode_freezes_the_legacy_member_tables(member_service):
    with member_service("dual") as service:
        service.signup("Jung")
        assert service.move("single").status_code == 200
        with pytest.raises(sa.exc.DBAPIError, match="frozen"), service.legacy.begin() as conn:
            conn.execute(sa.text("UPDATE members SET name = 'x'"))


def test_a_cutover_on_drift_is_refused_and_the_mode_stays_dual(member_service):
    with member_service("dual") as service:
        _, member_id = service.signup("Choi")
        with service.legacy.begin() as conn:  # a writer nobody moved
            conn.execute(
                sa.text("UPDATE members SET name = 'Drift' WHERE id = :id"), {"id": member_id}
            )
        refused = service.move("single")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "DRIFT_BLOCKS_CUTOVER"
        assert refused.json()["error"]["details"]
        assert service.http.get("/admin/data-mode", headers=ADMIN).json()["data"]["mode"] == "dual"
        assert mode_metric(service, "dual") == "1.0"


def test_asking_for_the_current_mode_changes_nothing(member_service):
    with member_service("shared") as service:
        reply = service.switch("shared")
        assert reply.json()["data"]["changed"] is False


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_acknowledged_signup_is_lost_while_the_mode_moves_under_live_writes(member_service):
    with member_service("shared") as service:
        acknowledged: list[str] = []
        stop = threading.Event()

        def sign_up_until_stopped() -> None:
            while not stop.is_set():
                acknowledged.append(service.signup("Live")[0])

        writer = threading.Thread(target=sign_up_until_stopped)
        writer.start()
        try:
            for mode in ("dual", "single"):
                time.sleep(0.5)
                assert service.move(mode).status_code == 200
            time.sleep(0.5)
        finally:
            stop.set()
            writer.join()
        assert len(acknowledged) > 5
        assert set(acknowledged) <= emails(service.new)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_restart_in_an_earlier_mode_after_single_write_is_refused(settings_for):
    with running(settings_for("dual")) as service:
        assert service.move("single").status_code == 200
    with pytest.raises(FrozenLegacyTables, match="frozen"):
        async with runtime_of(settings_for("shared")):
            pass
    async with runtime_of(settings_for("single")) as data:
        assert data.mode.value == "single"


def runtime_of(settings):
    return extraction_runtime(
        MEMBERS_SPEC,
        settings.legacy_db_url,
        settings.db,
        upgrade=upgrade,
        mode=settings.data_mode,
        sync_interval=settings.sync_interval,
        registry=CollectorRegistry(),
    )
