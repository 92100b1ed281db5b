"""The switches the stage engine flips as orders and payments leave: read-only refuses the
monolith's writes of the feature's routes with 410 FEATURE_MOVED naming the service, retired
refuses everything; and the points-debit recovery stands still once payments moved."""

from __future__ import annotations

import asyncio

import pytest

from infra.settings import DEV_ADMIN_TOKEN, Settings
from libs.db import make_engine
from monolith.adapters.migrate import upgrade
from monolith.entrypoints.app import _recover
from monolith.service_layer.features import Features
from tests.monolith.conftest import Shop

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
SERVICES = {"orders": "order-service", "payments": "payment-service"}


def switch(shop: Shop, **features: str) -> None:
    reply = shop.http.put("/admin/features", json={"features": features}, headers=ADMIN)
    assert reply.status_code == 200, reply.text


def calls(shop: Shop, token: str, feature: str) -> dict[str, tuple[str, str, dict]]:
    """A read and a write of the feature's routes, both of which the monolith serves."""
    order = shop.order(token, (shop.product("TEE-001")["id"], 1)).json()["data"]
    if feature == "orders":
        return {
            "read": ("GET", f"/api/orders/{order['id']}", {}),
            "list": ("GET", "/api/orders", {}),
            "write": ("POST", f"/api/orders/{order['id']}/cancel", {}),
        }
    paid = shop.http.post(
        "/api/payments", json={"order_id": order["id"]}, headers=shop.auth(token)
    ).json()["data"]
    return {
        "read": ("GET", f"/api/payments/{paid['id']}", {}),
        "write": ("POST", f"/api/payments/{paid['id']}/refund", {}),
    }


def answer(shop: Shop, token: str, call: tuple[str, str, dict]) -> tuple[int, str | None]:
    method, path, kwargs = call
    reply = shop.http.request(method, path, headers=shop.auth(token), **kwargs)
    error = reply.json()["error"]
    return reply.status_code, error and error["code"]


@pytest.mark.parametrize("feature", ["orders", "payments"])
def test_read_only_refuses_the_writes_and_serves_the_reads(shop: Shop, feature):
    token = shop.member()
    routes = calls(shop, token, feature)
    switch(shop, **{feature: "read-only"})
    assert answer(shop, token, routes["read"]) == (200, None)
    method, path, _ = routes["write"]
    refused = shop.http.request(method, path, headers=shop.auth(token))
    assert refused.status_code == 410
    error = refused.json()["error"]
    assert error["code"] == "FEATURE_MOVED"
    assert error["details"] == [
        {"feature": feature, "moved_to": SERVICES[feature], "path": f"/api/{feature}"}
        | {"state": "read-only"}
    ]
    assert f"/api/{feature} through the gateway" in error["message"]
    switch(shop, **{feature: "serving"})
    assert answer(shop, token, routes["write"]) == (200, None)  # nothing was done before


@pytest.mark.parametrize("feature", ["orders", "payments"])
def test_retired_refuses_every_call_and_changes_nothing(shop: Shop, feature):
    token = shop.member()
    routes = calls(shop, token, feature)
    switch(shop, **{feature: "retired"})
    before = shop.snapshot()
    for call in routes.values():
        assert answer(shop, token, call) == (410, "FEATURE_MOVED")
    assert shop.snapshot() == before


def test_orders_moving_leave_products_payments_and_shipments_served(shop: Shop):
    token = shop.member()
    order = shop.order(token, (shop.product("TEE-001")["id"], 1)).json()["data"]
    switch(shop, orders="retired")
    assert shop.http.get("/api/products").status_code == 200
    paid = shop.http.post("/api/payments", json={"order_id": order["id"]}, headers=shop.auth(token))
    assert paid.status_code == 201
    shipment = shop.http.get(f"/api/shipments/{order['id']}", headers=shop.auth(token))
    assert shipment.status_code != 410  # fulfilment stays: ready, or its event on the way


class CountingPoints:
    """The member service's points as the recovery loop sees them: it only counts rounds."""

    def __init__(self) -> None:
        self.rounds = 0

    def recover(self, _stale_seconds: float) -> int:
        self.rounds += 1
        return 0


@pytest.mark.parametrize(("payments", "runs"), [("serving", True), ("read-only", False)])
async def test_the_points_debit_recovery_runs_only_while_payments_are_served_here(
    tmp_path, payments, runs
):
    """Once payments moved, the payment service gives back the debits its payments left."""
    engine = make_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    upgrade(engine)
    try:
        features = Features(engine)
        features.change({"payments": payments})
        settings = Settings(data_dir=tmp_path, monolith_points_recovery_interval=0.01)
        points, stop = CountingPoints(), asyncio.Event()
        loop = asyncio.create_task(_recover(points, features, settings, stop))
        await asyncio.sleep(0.2)
        stop.set()
        await loop
    finally:
        engine.dispose()
    assert (points.rounds > 1) is runs
