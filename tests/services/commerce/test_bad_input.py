"""Bad input gets the monolith's 4xx envelopes from the order and payment services too, and
changes nothing in any DB: the order and payment cases are the monolith's own table, so the
two sides cannot drift while the gateway splits their routes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from infra.extractions import ORDERS, PAYMENTS
from services.order.entrypoints.app import create_app as create_order_service
from services.payment.entrypoints.app import create_app as create_payment_service
from tests.monolith.test_bad_input_contract import CASES as MONOLITH_CASES
from tests.support.bad_input import misanswered

WRONG = {"Authorization": "Bearer wrong"}
DATA_MODE = [
    ("/admin/data-mode", "GET", "/admin/data-mode", {"admin": None}, 401, "UNAUTHENTICATED"),
    ("/admin/data-mode", "GET", "/admin/data-mode", {"admin": WRONG}, 403, "FORBIDDEN"),
    (
        "/admin/data-mode",
        "PUT",
        "/admin/data-mode",
        {"json": {"mode": "x"}},
        422,
        "VALIDATION_FAILED",
    ),
    (
        "/admin/data-mode",
        "PUT",
        "/admin/data-mode",
        {"json": {"mode": "single"}},
        409,
        "MODE_STEP_REFUSED",
    ),
]
ORDER_CASES = [c for c in MONOLITH_CASES if c[0] and c[0].startswith("/api/orders")] + [
    *DATA_MODE,
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
PAYMENT_CASES = [c for c in MONOLITH_CASES if c[0] and c[0].startswith("/api/payments")] + [
    *DATA_MODE,
    (
        "/admin/points-debits",
        "GET",
        "/admin/points-debits",
        {"admin": None},
        401,
        "UNAUTHENTICATED",
    ),
    ("/admin/points-debits", "GET", "/admin/points-debits", {"admin": WRONG}, 403, "FORBIDDEN"),
    (None, "GET", "/api/nowhere", {}, 404, "NOT_FOUND"),
]
TABLES = ("orders", "order_lines", "payments", "idempotency_keys", "point_spends", "stock_holds")


def snapshot(engines: list[sa.Engine]) -> list[dict[str, list]]:
    found = []
    for engine in engines:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            found.append(
                {t: conn.execute(sa.text(f"SELECT * FROM {t}")).all() for t in TABLES if t in names}
            )
    return found


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_route_answers_bad_input_with_a_4xx_envelope_and_changes_nothing(commerce):
    with commerce() as shop:
        _, token = shop.member()
        engines = [
            shop.legacy,
            shop.order_data.writer.new,
            shop.payment_data.writer.new,
        ]
        before = snapshot(engines)
        failures = misanswered(shop.orders, ORDER_CASES, token, "order-service")
        failures += misanswered(shop.payments, PAYMENT_CASES, token, "payment-service")
        assert failures == []
        assert snapshot(engines) == before


@pytest.mark.parametrize(
    ("extraction", "create", "cases"),
    [
        (ORDERS, create_order_service, ORDER_CASES),
        (PAYMENTS, create_payment_service, PAYMENT_CASES),
    ],
)
def test_the_bad_input_tables_cover_every_route(tmp_path, extraction, create, cases):
    app = create(extraction.settings(data_dir=tmp_path))
    routes = {r for r in app.openapi()["paths"] if r.startswith(("/api", "/admin"))}
    assert any(r.startswith("/api/") for r in routes)  # the listing sees the included routers
    assert routes <= {case[0] for case in cases}
