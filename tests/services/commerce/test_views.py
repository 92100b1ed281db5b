"""The pages of /api/views, composed by the monolith from the owners' answers through the
gateway (read_model/fanout.py), on the whole system: the monolith, the member, order and
payment services and the gateway on real sockets. At stage 0 the monolith owns everything and
its composition calls come back to itself; with the services owning members, orders and
payments the same page comes from them. Either way it is what the owners answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from gateway.app import create_app as create_gateway
from infra.processes import grpc_target
from infra.settings import GatewaySettings
from infra.supervisor import free_port
from libs.response import ApiError
from read_model.fanout import Channels, compose_my_page_grpc, compose_order_grpc
from tests.services.commerce.conftest import ADMIN, auth
from tests.services.member.conftest import eventually
from tests.support.servers import serving

EVENTS = 20.0  # seconds an event may take to reach its subscriber, on a loaded machine
PAYMENT_FIELDS = ("id", "method", "status", "amount", "points_spent", "points_earned")


@contextmanager
def system(commerce, mode: str = "shared", **kwargs: Any) -> Iterator[tuple[Any, httpx.Client]]:
    """The commerce processes and a gateway in front of them. The gateway's port is in the
    environment before the monolith starts: the monolith finds it there (the registry), as
    `shop up` runs it. The order service's backend URL can be overridden (a dead one)."""
    port = free_port()
    gateway_backends = kwargs.pop("gateway_backends", {})
    with commerce(mode, SHOP_GATEWAY_PORT=str(port), **kwargs) as shop:
        settings = GatewaySettings(gateway_backends=gateway_backends)
        with (
            serving(create_gateway(settings), port) as url,
            httpx.Client(base_url=url, timeout=20) as gateway,
        ):
            yield shop, gateway


def route(gateway: httpx.Client, **owners: str) -> None:
    """Sends each named route wholly to its new owner (a ramp's end state)."""
    table = gateway.get("/admin/routes", headers=ADMIN).json()["data"]
    for entry in table["routes"]:
        entry.pop("share_percent", None)
        if entry["name"] in owners:
            entry["weights"] = {"monolith": 0, owners[entry["name"]]: 100}
    body = {"routes": table["routes"], "version": table["version"], "reason": "test"}
    assert gateway.put("/admin/routes", json=body, headers=ADMIN).status_code == 200


def data(gateway: httpx.Client, token: str, path: str, **params: Any) -> Any:
    reply = gateway.get(path, params=params, headers=auth(token))
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]


def owners_page(gateway: httpx.Client, token: str) -> dict[str, Any]:
    """My page as the owners answer it, asked one by one: every order's payment, not only
    those the composition looks up."""
    member = data(gateway, token, "/api/members/me")
    orders = data(gateway, token, "/api/orders", limit=20)["items"]
    entries = []
    for order in orders:
        found = data(gateway, token, "/api/payments", order_id=order["id"])["items"]
        payment = {name: found[0][name] for name in PAYMENT_FIELDS} if found else None
        entries.append(
            {name: order[name] for name in ("id", "status", "total")}
            | {"placed_at": order["created_at"], "payment": payment}
        )
    return {
        "member": {name: member[name] for name in ("id", "email", "name", "phone")},
        "points": member["points"],
        "orders": entries,
    }


def buy(gateway: httpx.Client, token: str, product_id: int) -> dict[str, Any]:
    items = {"items": [{"product_id": product_id, "quantity": 1}]}
    placed = gateway.post("/api/orders", json=items, headers=auth(token))
    assert placed.status_code == 201, placed.text
    return placed.json()["data"]


def pay(gateway: httpx.Client, token: str, order_id: int) -> dict[str, Any]:
    paid = gateway.post("/api/payments", json={"order_id": order_id}, headers=auth(token))
    assert paid.status_code == 201, paid.text
    return paid.json()["data"]


def cancel(gateway: httpx.Client, token: str, order_id: int) -> None:
    cancelled = gateway.post(f"/api/orders/{order_id}/cancel", headers=auth(token))
    assert cancelled.status_code == 200, cancelled.text


def over_grpc(member_id: int, order_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """My page and an order's detail composed from the services' gRPC lookups."""

    async def compose() -> tuple[dict[str, Any], dict[str, Any]]:
        owners = ("member-service", "order-service", "payment-service")
        channels = Channels.open(*(grpc_target(name) for name in owners))
        try:
            page = await compose_my_page_grpc(channels, member_id)
            return page, await compose_order_grpc(channels, member_id, order_id)
        finally:
            await channels.close()

    return asyncio.run(compose())


def grpc_refusal(member_id: int, order_id: int) -> ApiError:
    try:
        over_grpc(member_id, order_id)
    except ApiError as exc:
        return exc
    raise AssertionError("the composition over gRPC did not refuse")


def types(detail: dict[str, Any]) -> list[str]:
    return [entry["type"] for entry in detail["timeline"]]


def test_at_stage_0_the_monolith_composes_my_page_from_its_own_answers(commerce):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with system(commerce, gateway_backends={"order-service": dead}) as (shop, gateway):
        member_id, token = shop.member()
        product = shop.product()
        paid = buy(gateway, token, product["id"])
        payment = pay(gateway, token, paid["id"])
        cancelled = buy(gateway, token, product["id"])
        cancel(gateway, token, cancelled["id"])

        page = gateway.get("/api/views/my-page", headers=auth(token))

        assert page.status_code == 200, page.text
        assert page.headers["X-Served-By"] == "monolith"
        assert page.json()["data"] == owners_page(gateway, token)
        composed = page.json()["data"]
        assert composed["member"]["id"] == member_id
        assert composed["points"] == paid["total"] // 100  # the card payment earned them
        assert [(o["id"], o["status"]) for o in composed["orders"]] == [
            (cancelled["id"], "CANCELLED"),
            (paid["id"], "PAID"),
        ]
        assert composed["orders"][1]["payment"] == {f: payment[f] for f in PAYMENT_FIELDS}
        assert composed["orders"][0]["payment"] is None

        detail = data(gateway, token, f"/api/views/orders/{paid['id']}")
        assert (detail["id"], detail["member_id"], detail["status"]) == (
            paid["id"],
            member_id,
            "PAID",
        )
        assert detail["lines"] == [
            {"product_id": product["id"], "quantity": 1, "unit_price": product["price"]}
        ]
        assert types(detail) == ["OrderPlaced", "PaymentCompleted", "OrderPaid"]
        assert [e["status"] for e in detail["timeline"]] == ["PLACED", "CAPTURED", "PAID"]
        assert types(data(gateway, token, f"/api/views/orders/{cancelled['id']}")) == [
            "OrderPlaced",
            "OrderCancelled",
        ]
        # The services' gRPC lookups, on the shared DB, compose the same page.
        assert over_grpc(member_id, paid["id"]) == (composed, detail)
        # An owner's refusal passes through as itself: another member's order is missing.
        other_id, other = shop.member()
        missing = gateway.get(f"/api/views/orders/{paid['id']}", headers=auth(other))
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "ORDER_NOT_FOUND"
        refused = grpc_refusal(other_id, paid["id"])
        assert (refused.status, refused.code) == (404, "ORDER_NOT_FOUND")
        # An owner that is down: the gateway's 502 for the orders becomes the page's 503.
        route(gateway, orders="order-service")
        down = gateway.get("/api/views/my-page", headers=auth(token))
        assert down.status_code == 503
        error = down.json()["error"]
        assert error["code"] == "VIEW_SOURCE_UNAVAILABLE"
        assert error["details"] == [
            {
                "call": "GET /api/orders",
                "status": 502,
                "code": "BAD_GATEWAY",
                "served_by": "gateway",
            }
        ]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kafka_broker", ["devbroker"], indirect=True)
def test_with_the_services_owning_everything_the_page_is_theirs(commerce, bootstrap):
    with system(commerce, "single", bootstrap=bootstrap) as (shop, gateway):
        member_id, token = shop.member()  # while the monolith signs members up
        route(gateway, members="member-service", orders="order-service", payments="payment-service")
        product = shop.product()["id"]
        paid, cancelled, refunded = (buy(gateway, token, product) for _ in range(3))
        first = pay(gateway, token, paid["id"])
        cancel(gateway, token, cancelled["id"])
        second = pay(gateway, token, refunded["id"])
        points = first["points_earned"] + second["points_earned"]
        assert eventually(
            lambda: data(gateway, token, "/api/members/me")["points"] == points, EVENTS
        )
        back = gateway.post(f"/api/payments/{second['id']}/refund", headers=auth(token))
        assert back.status_code == 200, back.text

        def statuses() -> list[str]:
            return [o["status"] for o in data(gateway, token, "/api/orders")["items"]]

        assert eventually(lambda: statuses() == ["REFUNDED", "CANCELLED", "PAID"], EVENTS)
        assert (
            gateway.get("/api/orders", headers=auth(token)).headers["X-Served-By"]
            == "order-service"
        )
        assert (
            gateway.get("/api/payments", headers=auth(token)).headers["X-Served-By"]
            == "payment-service"
        )

        composed = data(gateway, token, "/api/views/my-page")
        assert composed == owners_page(gateway, token)
        assert composed["points"] == first["points_earned"]  # the refund took the rest back
        assert [o["payment"] and o["payment"]["status"] for o in composed["orders"]] == [
            "REFUNDED",
            None,
            "CAPTURED",
        ]
        detail = data(gateway, token, f"/api/views/orders/{refunded['id']}")
        assert types(detail) == [
            "OrderPlaced",
            "PaymentCompleted",
            "OrderPaid",
            "PaymentRefunded",
            "OrderRefunded",
        ]
        assert [e["status"] for e in detail["timeline"]] == [
            "PLACED",
            "CAPTURED",
            "PAID",
            "REFUNDED",
            "REFUNDED",
        ]
        assert detail["payment"] == {f: back.json()["data"][f] for f in PAYMENT_FIELDS}
        assert over_grpc(member_id, refunded["id"]) == (composed, detail)
