from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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
