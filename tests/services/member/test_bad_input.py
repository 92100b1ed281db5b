"""Bad input gets the monolith's 4xx envelopes from the member service too, and changes
nothing in either DB. The member cases are the monolith's own table, so the two cannot drift."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from infra.extractions import MEMBERS
from services.member.adapters.tables import members, point_ledger
from services.member.entrypoints.app import create_app
from tests.monolith.test_bad_input_contract import CASES as MONOLITH_CASES
from tests.services.member.conftest import eventually
from tests.support.bad_input import misanswered

MEMBER_CASES = [c for c in MONOLITH_CASES if c[0] and c[0].startswith("/api/members")]
ADMIN_CASES = [
    ("/admin/data-mode", "GET", "/admin/data-mode", {"admin": None}, 401, "UNAUTHENTICATED"),
    (
        "/admin/data-mode",
        "GET",
        "/admin/data-mode",
        {"admin": {"Authorization": "Bearer wrong"}},
        403,
        "FORBIDDEN",
    ),
    (
        "/admin/data-mode",
        "PUT",
        "/admin/data-mode",
        {"json": {"mode": "x"}},
        422,
        "VALIDATION_FAILED",
    ),
    ("/admin/data-mode", "PUT", "/admin/data-mode", {"json": {}}, 422, "VALIDATION_FAILED"),
    (
        "/admin/data-mode",
        "PUT",
        "/admin/data-mode",
        {"json": {"mode": "single"}},
        409,
        "MODE_STEP_REFUSED",
    ),
    (
        "/admin/events/parked",
        "GET",
        "/admin/events/parked",
        {"admin": None},
        401,
        "UNAUTHENTICATED",
    ),
    (
        "/admin/events/parked/{parked_id}/replay",
        "POST",
        "/admin/events/parked/987654/replay",
        {},
        404,
        "PARKED_EVENT_NOT_FOUND",
    ),
    (None, "GET", "/api/nowhere", {}, 404, "NOT_FOUND"),
]
CASES = MEMBER_CASES + ADMIN_CASES


def snapshot(engine: sa.Engine) -> dict[str, list]:
    """The migrated tables' rows, which the legacy DB and the member DB both have."""
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(t)).all() for t in (members, point_ledger)}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_route_answers_bad_input_with_a_4xx_envelope_and_changes_nothing(member_service):
    with member_service("shared") as service:
        token = service.token(service.signup("Kim")[0])
        # The sync job copies Kim to the member DB on its own schedule: let it, so only the
        # bad input could change the snapshot from here on.
        assert eventually(lambda: snapshot(service.new) == snapshot(service.legacy))
        before = (snapshot(service.legacy), snapshot(service.new))
        failures = misanswered(service.http, CASES, token, "member-service")
        assert failures == []
        assert (snapshot(service.legacy), snapshot(service.new)) == before


def test_the_bad_input_table_covers_every_route_of_the_member_service(tmp_path):
    app = create_app(MEMBERS.settings(data_dir=tmp_path))
    # The OpenAPI paths: FastAPI keeps included routers unflattened in `app.routes`.
    routes = set(app.openapi()["paths"])
    assert "/api/members/me" in routes  # the listing sees the included routers
    routes = {r for r in routes if r.startswith(("/api", "/admin"))}
    assert routes <= {case[0] for case in CASES}
