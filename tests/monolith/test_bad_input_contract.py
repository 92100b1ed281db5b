"""Bad input anywhere gets a clear 4xx envelope and changes nothing. Every route of the
monolith must appear in this table, so a new route cannot ship without its bad-input cases."""

from __future__ import annotations

import json

from infra.settings import DEV_ADMIN_TOKEN, DEV_JWT_SECRET
from libs.auth import TokenIssuer
from libs.response import is_valid_envelope
from monolith.entrypoints.app import create_app
from tests.monolith.conftest import Shop

BAD_JSON = {"content": b'{"items": [', "headers": {"Content-Type": "application/json"}}
MEMBER = {"email": "x@example.com", "password": "password-123", "name": "X"}
# A well signed token for a member id no BIGINT column holds (and one for id 0).
HUGE_SUB = {
    "auth": False,
    "headers": {"Authorization": "Bearer " + TokenIssuer(DEV_JWT_SECRET, 3600).issue(2**64)},
}
ZERO_SUB = {
    "auth": False,
    "headers": {"Authorization": "Bearer " + TokenIssuer(DEV_JWT_SECRET, 3600).issue(0)},
}
# Text PostgreSQL cannot store (NUL, a lone surrogate) or nobody should (control characters).
BAD_TEXT = ["Kim\x00", "Kim\x07Lee", "Kim\nLee", "Kim\ud800"]


def as_json(body: object) -> dict:
    """Request options sending `body` as escaped JSON (an HTTP client refuses to encode a lone
    surrogate; JSON can carry one as \\ud800)."""
    return {"content": json.dumps(body).encode(), "headers": {"Content-Type": "application/json"}}


def line(product_id=1, quantity=1):
    return {"items": [{"product_id": product_id, "quantity": quantity}]}


HOLD = "/internal/stock-holds/{order_id}"
ADMIN = {"admin": True}
WRONG_ADMIN = {"auth": False, "headers": {"Authorization": "Bearer not-the-admin-token"}}
LIMITED = 12  # the seeded catalogue's LTD-001, 30 in stock


def hold(body, **kwargs):
    return {"json": body, **ADMIN, **kwargs}


# The catalogue's internal API: every call needs the admin token; the fixture's order (id 1)
# holds one TEE-001 already.
HOLD_CASES = [
    (HOLD, "PUT", "/internal/stock-holds/5", {**BAD_JSON, **ADMIN}, 400, "INVALID_JSON"),
    (HOLD, "PUT", "/internal/stock-holds/5", hold({}), 422, "VALIDATION_FAILED"),
    (HOLD, "PUT", "/internal/stock-holds/5", hold({"items": []}), 422, "VALIDATION_FAILED"),
    (HOLD, "PUT", "/internal/stock-holds/5", hold(line(quantity=0)), 422, "VALIDATION_FAILED"),
    (HOLD, "PUT", "/internal/stock-holds/5", hold(line(quantity=101)), 422, "VALIDATION_FAILED"),
    (HOLD, "PUT", "/internal/stock-holds/5", hold(line(quantity="2")), 422, "VALIDATION_FAILED"),
    (HOLD, "PUT", "/internal/stock-holds/5", hold(line(product_id=0)), 422, "VALIDATION_FAILED"),
    (
        HOLD,
        "PUT",
        "/internal/stock-holds/5",
        hold({"items": [{"product_id": 1, "quantity": 1, "unit_price": 1}]}),
        422,
        "VALIDATION_FAILED",
    ),
    (
        HOLD,
        "PUT",
        "/internal/stock-holds/5",
        hold({"items": [{"product_id": n, "quantity": 1} for n in range(1, 22)]}),
        422,
        "VALIDATION_FAILED",
    ),
    (
        HOLD,
        "PUT",
        "/internal/stock-holds/5",
        hold({"items": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}]}),
        422,
        "DUPLICATE_PRODUCT",
    ),
    (HOLD, "PUT", "/internal/stock-holds/0", hold(line()), 422, "VALIDATION_FAILED"),
    (HOLD, "PUT", "/internal/stock-holds/abc", hold(line()), 422, "VALIDATION_FAILED"),
    (HOLD, "PUT", f"/internal/stock-holds/{10**30}", hold(line()), 422, "VALIDATION_FAILED"),
    (
        HOLD,
        "PUT",
        "/internal/stock-holds/5",
        hold(line(product_id=424242)),
        404,
        "PRODUCT_NOT_FOUND",
    ),
    (
        HOLD,
        "PUT",
        "/internal/stock-holds/5",
        hold({"items": [line()["items"][0], {"product_id": LIMITED, "quantity": 31}]}),
        409,
        "OUT_OF_STOCK",
    ),
    (HOLD, "PUT", "/internal/stock-holds/1", hold(line(quantity=2)), 409, "HOLD_MISMATCH"),
    (
        HOLD,
        "PUT",
        "/internal/stock-holds/5",
        {"json": line(), "auth": False},
        401,
        "UNAUTHENTICATED",
    ),
    (HOLD, "PUT", "/internal/stock-holds/5", {"json": line()}, 403, "FORBIDDEN"),
    (HOLD, "PUT", "/internal/stock-holds/5", {"json": line(), **WRONG_ADMIN}, 403, "FORBIDDEN"),
    (HOLD, "POST", "/internal/stock-holds/5", hold(line()), 405, "METHOD_NOT_ALLOWED"),
    (HOLD, "DELETE", "/internal/stock-holds/0", ADMIN, 422, "VALIDATION_FAILED"),
    (HOLD, "DELETE", "/internal/stock-holds/x", ADMIN, 422, "VALIDATION_FAILED"),
    (HOLD, "DELETE", "/internal/stock-holds/1", {"auth": False}, 401, "UNAUTHENTICATED"),
    (HOLD, "DELETE", "/internal/stock-holds/1", {}, 403, "FORBIDDEN"),
    (HOLD, "DELETE", "/internal/stock-holds/1", WRONG_ADMIN, 403, "FORBIDDEN"),
    (HOLD, "GET", "/internal/stock-holds/987654", ADMIN, 404, "HOLD_NOT_FOUND"),
    (HOLD, "GET", "/internal/stock-holds/-1", ADMIN, 422, "VALIDATION_FAILED"),
    (HOLD, "GET", "/internal/stock-holds/1", {"auth": False}, 401, "UNAUTHENTICATED"),
    (HOLD, "GET", "/internal/stock-holds/1", {}, 403, "FORBIDDEN"),
]

# (route template, method, path, request kwargs, status, error code)
CASES = [
    ("/api/members", "POST", "/api/members", BAD_JSON, 400, "INVALID_JSON"),
    ("/api/members", "POST", "/api/members", {"json": {}}, 422, "VALIDATION_FAILED"),
    (
        "/api/members",
        "POST",
        "/api/members",
        {"json": {**MEMBER, "email": "not-an-email"}},
        422,
        "VALIDATION_FAILED",
    ),
    (
        "/api/members",
        "POST",
        "/api/members",
        {"json": {**MEMBER, "password": "short"}},
        422,
        "VALIDATION_FAILED",
    ),
    (
        "/api/members",
        "POST",
        "/api/members",
        {"json": {**MEMBER, "password": 12345678}},
        422,
        "VALIDATION_FAILED",
    ),
    (
        "/api/members",
        "POST",
        "/api/members",
        {"json": {**MEMBER, "name": "n" * 51}},
        422,
        "VALIDATION_FAILED",
    ),
    (
        "/api/members",
        "POST",
        "/api/members",
        {"json": {**MEMBER, "is_admin": True}},
        422,
        "VALIDATION_FAILED",
    ),
    ("/api/members", "POST", "/api/members", {"json": [MEMBER]}, 422, "VALIDATION_FAILED"),
    *(
        (
            "/api/members",
            "POST",
            "/api/members",
            as_json({**MEMBER, "name": bad}),
            422,
            "VALIDATION_FAILED",
        )
        for bad in BAD_TEXT
    ),
    (
        "/api/members",
        "POST",
        "/api/members",
        {"json": {**MEMBER, "password": "password-\x00123"}},
        422,
        "VALIDATION_FAILED",
    ),
    ("/api/members/login", "POST", "/api/members/login", BAD_JSON, 400, "INVALID_JSON"),
    (
        "/api/members/login",
        "POST",
        "/api/members/login",
        {"json": {"email": "x@example.com"}},
        422,
        "VALIDATION_FAILED",
    ),
    ("/api/members/me", "GET", "/api/members/me", {"auth": False}, 401, "UNAUTHENTICATED"),
    ("/api/members/me", "PATCH", "/api/members/me", {"json": {}}, 422, "NOTHING_TO_UPDATE"),
    (
        "/api/members/me",
        "PATCH",
        "/api/members/me",
        {"json": {"name": None}},
        422,
        "NOTHING_TO_UPDATE",
    ),
    (
        "/api/members/me",
        "PATCH",
        "/api/members/me",
        {"json": {"phone": "call me"}},
        422,
        "VALIDATION_FAILED",
    ),
    (
        "/api/members/me",
        "PATCH",
        "/api/members/me",
        {"json": {"name": "   "}},
        422,
        "VALIDATION_FAILED",
    ),
    *(
        (
            "/api/members/me",
            "PATCH",
            "/api/members/me",
            as_json({"name": bad}),
            422,
            "VALIDATION_FAILED",
        )
        for bad in BAD_TEXT
    ),
    ("/api/members/me", "GET", "/api/members/me", HUGE_SUB, 401, "INVALID_TOKEN"),
    ("/api/members/me", "GET", "/api/members/me", ZERO_SUB, 401, "INVALID_TOKEN"),
    (
        "/api/members/me",
        "PATCH",
        "/api/members/me",
        {**HUGE_SUB, "json": {"name": "X"}},
        401,
        "INVALID_TOKEN",
    ),
    ("/api/members/me", "DELETE", "/api/members/me", {}, 405, "METHOD_NOT_ALLOWED"),
    (
        "/api/members/me/points",
        "GET",
        "/api/members/me/points",
        {"auth": False},
        401,
        "UNAUTHENTICATED",
    ),
    ("/api/products", "GET", "/api/products?limit=0", {}, 422, "VALIDATION_FAILED"),
    ("/api/products", "GET", "/api/products?limit=abc", {}, 422, "VALIDATION_FAILED"),
    ("/api/products", "GET", "/api/products?offset=-1", {}, 422, "VALIDATION_FAILED"),
    ("/api/products", "POST", "/api/products", {"json": {}}, 405, "METHOD_NOT_ALLOWED"),
    ("/api/products/{product_id}", "GET", "/api/products/0", {}, 422, "VALIDATION_FAILED"),
    ("/api/products/{product_id}", "GET", "/api/products/abc", {}, 422, "VALIDATION_FAILED"),
    ("/api/products/{product_id}", "GET", f"/api/products/{10**30}", {}, 422, "VALIDATION_FAILED"),
    ("/api/products/{product_id}", "GET", "/api/products/999999", {}, 404, "PRODUCT_NOT_FOUND"),
    ("/api/orders", "POST", "/api/orders", BAD_JSON, 400, "INVALID_JSON"),
    ("/api/orders", "POST", "/api/orders", {"json": {"items": []}}, 422, "VALIDATION_FAILED"),
    ("/api/orders", "POST", "/api/orders", {"json": line(quantity=0)}, 422, "VALIDATION_FAILED"),
    ("/api/orders", "POST", "/api/orders", {"json": line(quantity=-3)}, 422, "VALIDATION_FAILED"),
    (
        "/api/orders",
        "POST",
        "/api/orders",
        {"json": line(quantity=10**12)},
        422,
        "VALIDATION_FAILED",
    ),
    ("/api/orders", "POST", "/api/orders", {"json": line(quantity="2")}, 422, "VALIDATION_FAILED"),
    ("/api/orders", "POST", "/api/orders", {"json": line(quantity=1.5)}, 422, "VALIDATION_FAILED"),
    (
        "/api/orders",
        "POST",
        "/api/orders",
        {"json": line(product_id=10**20)},
        422,
        "VALIDATION_FAILED",
    ),
    (
        "/api/orders",
        "POST",
        "/api/orders",
        {"json": line(product_id=424242)},
        404,
        "PRODUCT_NOT_FOUND",
    ),
    (
        "/api/orders",
        "POST",
        "/api/orders",
        {"json": {"items": [{"product_id": 1, "quantity": 1}] * 2}},
        422,
        "DUPLICATE_PRODUCT",
    ),
    (
        "/api/orders",
        "POST",
        "/api/orders",
        {"json": {"items": [{"product_id": n, "quantity": 1} for n in range(1, 23)]}},
        422,
        "VALIDATION_FAILED",
    ),
    ("/api/orders", "POST", "/api/orders", {"json": line(), "auth": False}, 401, "UNAUTHENTICATED"),
    ("/api/orders", "GET", "/api/orders?limit=1000", {}, 422, "VALIDATION_FAILED"),
    ("/api/orders", "PUT", "/api/orders", {"json": line()}, 405, "METHOD_NOT_ALLOWED"),
    ("/api/orders/{order_id}", "GET", "/api/orders/987654", {}, 404, "ORDER_NOT_FOUND"),
    ("/api/orders/{order_id}", "GET", "/api/orders/-1", {}, 422, "VALIDATION_FAILED"),
    (
        "/api/orders/{order_id}/cancel",
        "POST",
        "/api/orders/987654/cancel",
        {},
        404,
        "ORDER_NOT_FOUND",
    ),
    ("/api/payments", "POST", "/api/payments", BAD_JSON, 400, "INVALID_JSON"),
    (
        "/api/payments",
        "POST",
        "/api/payments",
        {"json": {"order_id": 1, "method": "cash"}},
        422,
        "VALIDATION_FAILED",
    ),
    (
        "/api/payments",
        "POST",
        "/api/payments",
        {"json": {"order_id": "1"}},
        422,
        "VALIDATION_FAILED",
    ),
    (
        "/api/payments",
        "POST",
        "/api/payments",
        {"json": {"order_id": 987654}},
        404,
        "ORDER_NOT_FOUND",
    ),
    (
        "/api/payments",
        "POST",
        "/api/payments",
        {"json": {"order_id": 1}, "headers": {"Idempotency-Key": "k" * 101}},
        422,
        "VALIDATION_FAILED",
    ),
    ("/api/payments", "GET", "/api/payments?order_id=0", {}, 422, "VALIDATION_FAILED"),
    ("/api/payments", "GET", "/api/payments?order_id=-5", {}, 422, "VALIDATION_FAILED"),
    ("/api/payments", "GET", "/api/payments?order_id=abc", {}, 422, "VALIDATION_FAILED"),
    ("/api/payments", "GET", "/api/payments?order_id=1.5", {}, 422, "VALIDATION_FAILED"),
    ("/api/payments", "GET", "/api/payments?order_id=", {}, 422, "VALIDATION_FAILED"),
    ("/api/payments", "GET", f"/api/payments?order_id={10**30}", {}, 422, "VALIDATION_FAILED"),
    ("/api/payments", "GET", f"/api/payments?order_id={2**53 + 1}", {}, 422, "VALIDATION_FAILED"),
    ("/api/payments", "GET", "/api/payments?limit=0", {}, 422, "VALIDATION_FAILED"),
    ("/api/payments", "GET", "/api/payments?limit=101", {}, 422, "VALIDATION_FAILED"),
    ("/api/payments", "GET", "/api/payments?offset=-1", {}, 422, "VALIDATION_FAILED"),
    ("/api/payments", "GET", "/api/payments?order_id=1", {"auth": False}, 401, "UNAUTHENTICATED"),
    ("/api/payments/{payment_id}", "GET", "/api/payments/987654", {}, 404, "PAYMENT_NOT_FOUND"),
    (
        "/api/payments/{payment_id}/refund",
        "POST",
        "/api/payments/987654/refund",
        {},
        404,
        "PAYMENT_NOT_FOUND",
    ),
    (
        "/api/payments/{payment_id}/refund",
        "POST",
        "/api/payments/x/refund",
        {},
        422,
        "VALIDATION_FAILED",
    ),
    ("/admin/features", "GET", "/admin/features", {}, 403, "FORBIDDEN"),
    ("/admin/features", "GET", "/admin/features", {"auth": False}, 401, "UNAUTHENTICATED"),
    (
        "/admin/features",
        "PUT",
        "/admin/features",
        {"json": {"features": {"members": "gone"}}, "admin": True},
        422,
        "INVALID_FEATURE_VALUE",
    ),
    (
        "/admin/features",
        "PUT",
        "/admin/features",
        {"json": {"features": {"members": "retired", "shipping": "off"}}, "admin": True},
        422,
        "UNKNOWN_FEATURE",
    ),
    (
        "/admin/features",
        "PUT",
        "/admin/features",
        {"json": {"features": {}}, "admin": True},
        422,
        "VALIDATION_FAILED",
    ),
    ("/admin/points-debits", "GET", "/admin/points-debits", {}, 403, "FORBIDDEN"),
    ("/admin/events/parked", "GET", "/admin/events/parked", {}, 403, "FORBIDDEN"),
    (
        "/admin/events/parked/{parked_id}/replay",
        "POST",
        "/admin/events/parked/987654/replay",
        {"admin": True},
        404,
        "PARKED_EVENT_NOT_FOUND",
    ),
    (
        "/api/shipments/{order_id}",
        "GET",
        "/api/shipments/987654",
        {},
        404,
        "SHIPMENT_NOT_FOUND",
    ),
    ("/api/shipments/{order_id}", "GET", "/api/shipments/0", {}, 422, "VALIDATION_FAILED"),
    (
        "/api/shipments/{order_id}",
        "GET",
        "/api/shipments/1",
        {"auth": False},
        401,
        "UNAUTHENTICATED",
    ),
    (
        "/admin/points-debits/recover",
        "POST",
        "/admin/points-debits/recover",
        {"auth": False},
        401,
        "UNAUTHENTICATED",
    ),
    # The composed pages refuse bad input before any call to the owners.
    ("/api/views/my-page", "GET", "/api/views/my-page", {"auth": False}, 401, "UNAUTHENTICATED"),
    (
        "/api/views/my-page",
        "GET",
        "/api/views/my-page",
        {"auth": False, "headers": {"Authorization": "Bearer not-a-token"}},
        401,
        "INVALID_TOKEN",
    ),
    ("/api/views/my-page", "POST", "/api/views/my-page", {}, 405, "METHOD_NOT_ALLOWED"),
    ("/api/views/orders/{order_id}", "GET", "/api/views/orders/0", {}, 422, "VALIDATION_FAILED"),
    ("/api/views/orders/{order_id}", "GET", "/api/views/orders/x", {}, 422, "VALIDATION_FAILED"),
    (
        "/api/views/orders/{order_id}",
        "GET",
        f"/api/views/orders/{10**30}",
        {},
        422,
        "VALIDATION_FAILED",
    ),
    (
        "/api/views/orders/{order_id}",
        "GET",
        "/api/views/orders/1",
        {"auth": False},
        401,
        "UNAUTHENTICATED",
    ),
    *HOLD_CASES,
    (None, "GET", "/api/nowhere", {}, 404, "NOT_FOUND"),
]


def test_every_route_answers_bad_input_with_a_4xx_envelope_and_changes_nothing(shop: Shop):
    token = shop.member()
    shop.order(token, (shop.product("TEE-001")["id"], 1))  # something to not change
    before = shop.snapshot()
    failures = []
    for _, method, path, kwargs, status, code in CASES:
        kwargs = dict(kwargs)
        headers = {**kwargs.pop("headers", {})}
        if kwargs.pop("admin", False):
            headers |= {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
        elif kwargs.pop("auth", True):
            headers |= shop.auth(token)
        reply = shop.http.request(method, path, headers=headers, **kwargs)
        body = reply.json() if reply.headers.get("content-type") == "application/json" else None
        got = (reply.status_code, (body or {}).get("error", {}) and body["error"]["code"])
        if got != (status, code) or not is_valid_envelope(body):
            failures.append(
                f"{method} {path}: expected {status} {code}, got {got} {json.dumps(body)[:200]}"
            )
        elif not (reply.headers.get("X-Request-Id") and reply.headers["X-Served-By"] == "monolith"):
            failures.append(f"{method} {path}: missing X-Request-Id or X-Served-By")
    assert failures == []
    assert shop.snapshot() == before


def test_the_bad_input_table_covers_every_route_of_the_monolith(tmp_path):
    from infra.settings import Settings

    app = create_app(Settings(data_dir=tmp_path))
    # The OpenAPI paths: FastAPI keeps included routers unflattened in `app.routes`.
    prefixes = ("/api", "/admin", "/internal")
    routes = {path for path in app.openapi()["paths"] if path.startswith(prefixes)}
    assert "/api/orders/{order_id}" in routes  # the listing sees the included routers
    covered = {case[0] for case in CASES}
    assert routes - covered == set()
