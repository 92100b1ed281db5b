"""Order placement takes an Idempotency-Key, at the monolith and at the order service: a retry
with the same key and lines answers the first placement (Idempotency-Replayed: true) and
places nothing more; the same key with other lines is 422 IDEMPOTENCY_KEY_REUSED. The keys
move with the orders: a placement keyed at the monolith replays at the order service while
they share the legacy DB, and one keyed in the shared stage still replays after the order
service dual writes and after it writes its own DB alone."""

from __future__ import annotations

import uuid

import httpx
import pytest

from infra.extractions import ORDERS
from tests.services.commerce.conftest import ADMIN, auth

pytestmark = pytest.mark.slow


def _place(client: httpx.Client, token: str, key: str, product_id: int, qty: int = 1):
    body = {"items": [{"product_id": product_id, "quantity": qty}]}
    return client.post("/api/orders", json=body, headers=auth(token, **{"Idempotency-Key": key}))


def _switch(shop, mode: str) -> None:
    """The monolith's features first, then the order service's data mode: the stage engine's
    order."""
    flips = {"features": dict(ORDERS.features.get(mode, ()))}
    flipped = shop.monolith.put("/admin/features", json=flips, headers=ADMIN)
    assert flipped.status_code == 200, flipped.text
    switched = shop.orders.put("/admin/data-mode", json={"mode": mode}, headers=ADMIN)
    assert switched.status_code == 200, switched.text


def _count(client: httpx.Client, token: str) -> int:
    listed = client.get("/api/orders", params={"limit": 100}, headers=auth(token))
    return len(listed.json()["data"]["items"])


def test_a_retried_placement_answers_the_first_order(commerce):
    with commerce() as shop:
        _, token = shop.member()
        product_id = shop.product()["id"]
        stock = shop.stock(product_id)
        for client in (shop.monolith, shop.orders):
            key = uuid.uuid4().hex
            first = _place(client, token, key, product_id)
            assert first.status_code == 201, first.text
            again = _place(client, token, key, product_id)
            assert again.status_code == 201, again.text
            assert again.headers["Idempotency-Replayed"] == "true"
            assert again.json()["data"] == first.json()["data"]
            other = _place(client, token, key, product_id, qty=2)
            assert other.status_code == 422, other.text
            assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
        assert _count(shop.orders, token) == 2
        assert shop.stock(product_id) == stock - 2  # one hold per placement, not per request


def test_a_key_follows_the_orders_across_sides_and_modes(commerce):
    with commerce() as shop:
        _, token = shop.member()
        product_id = shop.product()["id"]
        key = uuid.uuid4().hex
        first = _place(shop.monolith, token, key, product_id)
        assert first.status_code == 201, first.text
        # shared (the legacy DB both sides write), dual (both DBs), single (the order DB)
        for mode in (None, "dual", "single"):
            if mode is not None:
                _switch(shop, mode)
            replayed = _place(shop.orders, token, key, product_id)
            assert replayed.status_code == 201, (mode, replayed.text)
            assert replayed.headers.get("Idempotency-Replayed") == "true", mode
            assert replayed.json()["data"] == first.json()["data"]
        assert _count(shop.orders, token) == 1
