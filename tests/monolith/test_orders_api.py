from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import sqlalchemy as sa

from libs.events.envelope import parse
from monolith.adapters.tables import event_outbox, orders, stock_holds
from monolith.domain.orders import PENDING
from monolith.service_layer import catalog
from tests.monolith.conftest import Shop


def test_placing_an_order_prices_its_lines_and_takes_stock(shop: Shop):
    token = shop.member()
    tee, cap = shop.product("TEE-001"), shop.product("CAP-001")
    placed = shop.order(token, (tee["id"], 2), (cap["id"], 1))
    assert placed.status_code == 201
    order = placed.json()["data"]
    assert order["status"] == "PLACED"
    assert order["total"] == tee["price"] * 2 + cap["price"]
    assert [line["amount"] for line in order["lines"]] == [tee["price"] * 2, cap["price"]]
    assert shop.product("TEE-001")["stock"] == tee["stock"] - 2


def test_an_order_that_cannot_be_filled_changes_no_stock_at_all(shop: Shop):
    token = shop.member()
    tee, limited = shop.product("TEE-001"), shop.product("LTD-001")
    before = shop.snapshot()
    reply = shop.order(token, (tee["id"], 1), (limited["id"], limited["stock"] + 1))
    assert reply.status_code == 409
    assert reply.json()["error"]["code"] == "OUT_OF_STOCK"
    assert shop.snapshot() == before


def test_cancelling_gives_the_stock_back_and_only_once(shop: Shop):
    token = shop.member()
    tee = shop.product("TEE-001")
    order = shop.order(token, (tee["id"], 3)).json()["data"]
    cancel = shop.http.post(f"/api/orders/{order['id']}/cancel", headers=shop.auth(token))
    assert cancel.json()["data"]["status"] == "CANCELLED"
    again = shop.http.post(f"/api/orders/{order['id']}/cancel", headers=shop.auth(token))
    assert again.status_code == 409
    assert shop.product("TEE-001")["stock"] == tee["stock"]


def test_another_members_order_is_reported_as_missing(shop: Shop):
    owner, stranger = shop.member("Owner"), shop.member("Stranger")
    order = shop.order(owner, (shop.product("TEE-001")["id"], 1)).json()["data"]
    for call in (shop.http.get, lambda url, **kw: shop.http.post(f"{url}/cancel", **kw)):
        reply = call(f"/api/orders/{order['id']}", headers=shop.auth(stranger))
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "ORDER_NOT_FOUND"


def test_a_member_lists_only_their_own_orders_newest_first(shop: Shop):
    me, other = shop.member(), shop.member()
    tee = shop.product("TEE-001")["id"]
    first = shop.order(me, (tee, 1)).json()["data"]["id"]
    second = shop.order(me, (tee, 1)).json()["data"]["id"]
    shop.order(other, (tee, 1))
    listed = shop.http.get("/api/orders", headers=shop.auth(me)).json()["data"]["items"]
    assert [o["id"] for o in listed] == [second, first]


def test_concurrent_orders_for_a_limited_item_never_oversell(shop: Shop):
    limited = shop.product("LTD-001")
    tokens = [shop.member(f"Buyer{n}") for n in range(8)]
    attempts = [tokens[n % len(tokens)] for n in range(limited["stock"])]  # 2 units each

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda t: shop.order(t, (limited["id"], 2)), attempts))

    statuses = sorted(r.status_code for r in replies)
    assert statuses.count(201) == limited["stock"] // 2
    assert set(statuses) == {201, 409}
    assert shop.product("LTD-001")["stock"] == limited["stock"] % 2


def test_an_order_holds_its_stock_at_the_catalogue_under_its_own_id(shop: Shop):
    token = shop.member()
    tee = shop.product("TEE-001")
    order = shop.order(token, (tee["id"], 2)).json()["data"]
    query = sa.select(stock_holds.c.status, stock_holds.c.lines)
    with shop.engine.connect() as conn:
        hold = conn.execute(query.where(stock_holds.c.order_id == order["id"])).one()
    assert hold.status == "held"
    assert [(line["product_id"], line["quantity"]) for line in hold.lines] == [(tee["id"], 2)]


def test_a_cancel_then_its_late_event_gives_the_stock_back_once(shop: Shop):
    """The monolith's cancel releases the hold; the OrderCancelled it announced reaches the
    catalogue's consumer afterwards, and finds nothing left to give back."""
    token = shop.member()
    tee = shop.product("TEE-001")
    order = shop.order(token, (tee["id"], 3)).json()["data"]
    shop.http.post(f"/api/orders/{order['id']}/cancel", headers=shop.auth(token))
    with shop.engine.begin() as conn:
        announced = conn.scalars(
            sa.select(event_outbox.c.payload).where(
                event_outbox.c.aggregate_id == str(order["id"]),
                event_outbox.c.type == "OrderCancelled",
            )
        ).one()
        catalog.handle_order_event(conn, parse(announced))
    assert shop.product("TEE-001")["stock"] == tee["stock"]


def pending_order(shop: Shop, token: str) -> int:
    """The order service's order between its commit and its stock hold, in the shared DB."""
    member_id = shop.http.get("/api/members/me", headers=shop.auth(token)).json()["data"]["id"]
    now = datetime.now(UTC)
    with shop.engine.begin() as conn:
        inserted = conn.execute(
            orders.insert().values(
                member_id=member_id, status=PENDING, total=0, created_at=now, updated_at=now
            )
        ).inserted_primary_key
    assert inserted is not None
    return inserted[0]


def test_a_pending_order_is_invisible_to_its_member(shop: Shop):
    token = shop.member()
    placed = shop.order(token, (shop.product("TEE-001")["id"], 1)).json()["data"]
    pending = pending_order(shop, token)
    before = shop.snapshot()
    calls = [
        shop.http.get(f"/api/orders/{pending}", headers=shop.auth(token)),
        shop.http.post(f"/api/orders/{pending}/cancel", headers=shop.auth(token)),
        shop.http.post("/api/payments", json={"order_id": pending}, headers=shop.auth(token)),
    ]
    assert [(r.status_code, r.json()["error"]["code"]) for r in calls] == [
        (404, "ORDER_NOT_FOUND")
    ] * 3
    listed = shop.http.get("/api/orders", headers=shop.auth(token)).json()["data"]["items"]
    assert [o["id"] for o in listed] == [placed["id"]]
    assert shop.snapshot() == before
