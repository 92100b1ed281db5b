"""The catalogue's internal stock-hold API, as the order service calls it: PUT holds, a repeat
answers the same hold, DELETE releases once and leaves a tombstone, GET reads. The refusals
and their "nothing changed" are in test_bad_input_contract.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from infra.settings import DEV_ADMIN_TOKEN
from tests.monolith.conftest import Shop

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
ORDER = 424242  # an order the order service placed: the monolith has never seen it


def put(shop: Shop, order_id: int, *lines: tuple[int, int]):
    items = [{"product_id": pid, "quantity": qty} for pid, qty in lines]
    return shop.http.put(f"/internal/stock-holds/{order_id}", json={"items": items}, headers=ADMIN)


def test_a_hold_takes_the_stock_and_its_repeat_answers_the_same_hold(shop: Shop):
    tee, cap = shop.product("TEE-001"), shop.product("CAP-001")
    first = put(shop, ORDER, (tee["id"], 2), (cap["id"], 1))
    assert first.status_code == 200, first.text
    assert first.json()["data"] == {
        "order_id": ORDER,
        "status": "held",
        "lines": [
            {
                "product_id": tee["id"],
                "name": tee["name"],
                "unit_price": tee["price"],
                "quantity": 2,
                "amount": tee["price"] * 2,
            },
            {
                "product_id": cap["id"],
                "name": cap["name"],
                "unit_price": cap["price"],
                "quantity": 1,
                "amount": cap["price"],
            },
        ],
        "total": tee["price"] * 2 + cap["price"],
        "applied": True,
    }
    again = put(shop, ORDER, (tee["id"], 2), (cap["id"], 1))
    assert again.json()["data"] == first.json()["data"] | {"applied": False}
    assert shop.product("TEE-001")["stock"] == tee["stock"] - 2
    read = shop.http.get(f"/internal/stock-holds/{ORDER}", headers=ADMIN).json()["data"]
    assert {k: read[k] for k in ("order_id", "status", "lines", "total")} == {
        k: first.json()["data"][k] for k in ("order_id", "status", "lines", "total")
    }


def test_a_release_gives_the_stock_back_once_and_the_hold_cannot_come_back(shop: Shop):
    tee = shop.product("TEE-001")
    put(shop, ORDER, (tee["id"], 2))
    path = f"/internal/stock-holds/{ORDER}"
    released = [shop.http.delete(path, headers=ADMIN).json()["data"] for _ in range(2)]
    assert released == [
        {"order_id": ORDER, "status": "released", "restored": True},
        {"order_id": ORDER, "status": "released", "restored": False},
    ]
    assert shop.product("TEE-001")["stock"] == tee["stock"]
    late = put(shop, ORDER, (tee["id"], 2))
    assert (late.status_code, late.json()["error"]["code"]) == (409, "HOLD_RELEASED")
    assert shop.http.get(path, headers=ADMIN).json()["data"]["status"] == "released"


def test_a_release_of_an_order_that_holds_nothing_refuses_its_late_hold(shop: Shop):
    """The order service did not hear back from its PUT, so it released: if that PUT lands
    afterwards, it must not take stock for an order that no longer exists."""
    tee = shop.product("TEE-001")
    path = f"/internal/stock-holds/{ORDER}"
    assert shop.http.delete(path, headers=ADMIN).json()["data"]["restored"] is False
    tombstone = shop.http.get(path, headers=ADMIN).json()["data"]
    assert (tombstone["status"], tombstone["lines"], tombstone["total"]) == ("released", [], 0)
    late = put(shop, ORDER, (tee["id"], 1))
    assert (late.status_code, late.json()["error"]["code"]) == (409, "HOLD_RELEASED")
    assert shop.product("TEE-001")["stock"] == tee["stock"]


def test_concurrent_retries_of_one_hold_take_the_stock_once(shop: Shop):
    limited = shop.product("LTD-001")
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda _: put(shop, ORDER, (limited["id"], 4)), range(6)))
    assert [r.status_code for r in replies] == [200] * 6
    assert sorted(r.json()["data"]["applied"] for r in replies) == [False] * 5 + [True]
    assert shop.product("LTD-001")["stock"] == limited["stock"] - 4
