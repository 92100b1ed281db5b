from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from monolith import invariants
from tests.monolith.conftest import Shop


def _placed(shop: Shop, token: str, sku: str = "KNT-001", qty: int = 1) -> dict:
    return shop.order(token, (shop.product(sku)["id"], qty)).json()["data"]


def _pay(shop: Shop, token: str, order_id: int, key: str | None = None, method: str = "card"):
    headers = shop.auth(token) | ({"Idempotency-Key": key} if key else {})
    return shop.http.post(
        "/api/payments", json={"order_id": order_id, "method": method}, headers=headers
    )


def test_paying_captures_the_total_marks_the_order_paid_and_earns_one_percent(shop: Shop):
    token = shop.member()
    order = _placed(shop, token)
    payment = _pay(shop, token, order["id"]).json()["data"]
    assert (payment["amount"], payment["status"]) == (order["total"], "CAPTURED")
    got = shop.http.get(f"/api/orders/{order['id']}", headers=shop.auth(token)).json()["data"]
    assert got["status"] == "PAID"
    balance = shop.http.get("/api/members/me/points", headers=shop.auth(token)).json()["data"]
    assert balance["balance"] == order["total"] // 100


def test_a_paid_order_cannot_be_paid_again_without_the_same_key(shop: Shop):
    token = shop.member()
    order = _placed(shop, token)
    assert _pay(shop, token, order["id"]).status_code == 201
    again = _pay(shop, token, order["id"])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ORDER_ALREADY_PAID"


def test_a_retried_payment_with_the_same_key_returns_the_first_result(shop: Shop):
    token = shop.member()
    order = _placed(shop, token)
    key = str(uuid.uuid4())
    first, retry = _pay(shop, token, order["id"], key), _pay(shop, token, order["id"], key)
    assert retry.status_code == first.status_code == 201
    assert retry.json()["data"] == first.json()["data"]
    assert retry.headers["Idempotency-Replayed"] == "true"
    with shop.engine.connect() as conn:
        assert invariants.payments_for_order(conn, order["id"]) == 1


def test_concurrent_retries_of_one_payment_charge_once_and_all_see_the_same_payment(shop: Shop):
    token = shop.member()
    order = _placed(shop, token)
    key = str(uuid.uuid4())
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda _: _pay(shop, token, order["id"], key), range(6)))
    assert {r.status_code for r in replies} == {201}
    assert len({r.json()["data"]["id"] for r in replies}) == 1
    with shop.engine.connect() as conn:
        assert invariants.payments_for_order(conn, order["id"]) == 1
        assert invariants.points_match_ledger(conn) == []


def test_a_key_reused_for_a_different_order_is_refused_and_changes_nothing(shop: Shop):
    token = shop.member()
    first, second = _placed(shop, token), _placed(shop, token)
    _pay(shop, token, first["id"], "same-key")
    before = shop.snapshot()
    reply = _pay(shop, token, second["id"], "same-key")
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert shop.snapshot() == before


def test_a_refund_restores_stock_reverses_points_and_marks_the_order_refunded(shop: Shop):
    token = shop.member()
    knit = shop.product("KNT-001")
    order = _placed(shop, token, qty=2)
    payment = _pay(shop, token, order["id"]).json()["data"]
    refund = shop.http.post(f"/api/payments/{payment['id']}/refund", headers=shop.auth(token))
    assert refund.json()["data"]["status"] == "REFUNDED"
    assert shop.product("KNT-001")["stock"] == knit["stock"]
    points = shop.http.get("/api/members/me/points", headers=shop.auth(token)).json()["data"]
    assert points["balance"] == 0
    assert [h["reason"] for h in points["history"]] == ["take-back", "earn"]
    with shop.engine.connect() as conn:
        assert invariants.check_all(conn, {}) == []


def test_points_pay_for_an_order_only_when_the_balance_covers_it(shop: Shop):
    token = shop.member()
    big = _placed(shop, token, "COT-001", 10)
    _pay(shop, token, big["id"])  # earns 45,900 points: 1% of 4,590,000
    cheap = _placed(shop, token, "CAP-001")
    expensive = _placed(shop, token, "COT-001")
    refused = _pay(shop, token, expensive["id"], method="points")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "INSUFFICIENT_POINTS"
    paid = _pay(shop, token, cheap["id"], method="points").json()["data"]
    assert (paid["points_spent"], paid["points_earned"]) == (cheap["total"], 0)


def test_a_refund_is_refused_when_the_points_it_earned_were_already_spent(shop: Shop):
    token = shop.member()
    big = _placed(shop, token, "COT-001", 10)
    big_payment = _pay(shop, token, big["id"]).json()["data"]
    cheap = _placed(shop, token, "CAP-001")
    _pay(shop, token, cheap["id"], method="points")
    before = shop.snapshot()
    reply = shop.http.post(f"/api/payments/{big_payment['id']}/refund", headers=shop.auth(token))
    assert reply.status_code == 409
    assert reply.json()["error"]["code"] == "POINTS_ALREADY_SPENT"
    assert shop.snapshot() == before


def test_an_orders_payment_is_found_by_its_order_id_and_only_by_its_member(shop: Shop):
    token, other = shop.member(), shop.member()
    paid, unpaid, later = _placed(shop, token), _placed(shop, token), _placed(shop, token)
    first = _pay(shop, token, paid["id"]).json()["data"]
    second = _pay(shop, token, later["id"]).json()["data"]

    def listed(who: str, **params) -> dict:
        reply = shop.http.get("/api/payments", params=params, headers=shop.auth(who))
        assert reply.status_code == 200, reply.text
        return reply.json()["data"]

    assert listed(token, order_id=paid["id"])["items"] == [first]
    assert listed(token, order_id=unpaid["id"])["items"] == []
    assert listed(other, order_id=paid["id"])["items"] == []  # not another member's
    everything = listed(token)
    assert [p["id"] for p in everything["items"]] == [second["id"], first["id"]]  # newest first
    assert (everything["limit"], everything["offset"]) == (20, 0)
    assert [p["id"] for p in listed(token, limit=1, offset=1)["items"]] == [first["id"]]
