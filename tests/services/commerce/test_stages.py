"""Stages 5-8 on the real processes (gateway included), forward and back: the stage engine
names each, takes both services through each step together, and undoes every one; orders and
payments written at each stage are where the stage says, and stay there when it is undone
(an order placed in single write is copied back to the legacy DB when dual write returns)."""

from __future__ import annotations

from contextlib import contextmanager

import httpx
import pytest
import sqlalchemy as sa

from gateway.app import create_app as create_gateway
from infra.settings import DEV_ADMIN_TOKEN, GatewaySettings
from infra.stages import Endpoints, StageEngine
from infra.supervisor import free_port
from tests.services.commerce.conftest import ADMIN, auth
from tests.support.servers import serving

pytestmark = pytest.mark.usefixtures("two_phase")


def ramped(engine: StageEngine, route: str, service: str) -> None:
    """A ramp's end state, set directly: the ramp itself needs live traffic (the demo runs
    it; tests/gateway/test_ramp.py tests it)."""
    table = engine.admin.route_table()
    for entry in table["routes"]:
        if entry["name"] == route:
            entry["weights"] = {"monolith": 0, service: 100}
    engine.admin.put_route_table(table, "test: the ramp's end state")


@contextmanager
def with_gateway(shop, monkeypatch):
    port = free_port()
    monkeypatch.setenv("SHOP_GATEWAY_PORT", str(port))
    with serving(create_gateway(GatewaySettings()), port) as url:
        endpoints = Endpoints(shop.urls | {"gateway": url}, DEV_ADMIN_TOKEN)
        engine = StageEngine(endpoints, say=lambda _: None)
        try:
            yield engine, httpx.Client(base_url=url, timeout=20)
        finally:
            engine.close()


def test_the_commerce_stages_forward_and_back(commerce, monkeypatch):
    with commerce() as shop, with_gateway(shop, monkeypatch) as (engine, gateway):
        _, token = shop.member()  # while the monolith still signs members up
        product = shop.product()["id"]
        assert engine.current() == 0
        engine.apply(1)
        ramped(engine, "members", "member-service")
        engine.apply(4, force=True)

        def buy() -> tuple[int, int]:
            items = {"items": [{"product_id": product, "quantity": 1}]}
            order = gateway.post("/api/orders", json=items, headers=auth(token))
            assert order.status_code == 201, order.text
            paid = gateway.post(
                "/api/payments", json={"order_id": order.json()["data"]["id"]}, headers=auth(token)
            )
            assert paid.status_code == 201, paid.text
            return order.json()["data"]["id"], paid.json()["data"]["id"]

        assert engine.current() == 4
        engine.apply(5)
        assert engine.current() == 5
        ramped(engine, "orders", "order-service")
        ramped(engine, "payments", "payment-service")
        assert engine.current() == 6
        served = gateway.post("/api/orders", json={"items": []}, headers=auth(token))
        assert served.headers["X-Served-By"] == "order-service"
        engine.apply(7)
        dual = buy()
        monolith_writes = shop.monolith.post(
            "/api/orders",
            json={"items": [{"product_id": product, "quantity": 1}]},
            headers=auth(token),
        )
        assert monolith_writes.status_code == 410  # read-only: writes go to the service
        engine.apply(8)
        assert engine.current() == 8
        single = buy()
        assert shop.monolith.get("/api/payments/1", headers=auth(token)).status_code == 410
        assert single[0] not in ids(shop.legacy, "orders")  # the legacy tables are frozen
        assert {dual[0], single[0]} <= ids(shop.order_data.writer.new, "orders")
        assert {dual[1], single[1]} <= ids(shop.payment_data.writer.new, "payments")

        # Back, one stage at a time: single -> dual copies single write's rows back.
        assert engine.apply(4, force=True) == 4
        assert engine.current() == 4
        assert {dual[0], single[0]} <= ids(shop.legacy, "orders")
        assert {dual[1], single[1]} <= ids(shop.legacy, "payments")
        features = shop.monolith.get("/admin/features", headers=ADMIN).json()["data"]["features"]
        assert features["orders"] == features["payments"] == "serving"
        assert gateway.get("/api/orders", headers=auth(token)).headers["X-Served-By"] == "monolith"
        listed = gateway.get("/api/orders", headers=auth(token)).json()["data"]["items"]
        assert {dual[0], single[0]} <= {o["id"] for o in listed}


def ids(engine: sa.Engine, table: str) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text(f"SELECT id FROM {table}")).scalars())
