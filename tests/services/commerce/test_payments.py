"""The payment service takes payments for the order service's orders: it reads the order over
gRPC, charges once per Idempotency-Key and once per order, and its PaymentCompleted fans out
to three subscribers that each act once: the order service (the order is PAID), the member
service (the points are earned) and the monolith's fulfilment (a shipment). A refund's
PaymentRefunded reverses each, and the order's OrderRefunded gives the stock back."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy as sa

from tests.services.commerce.conftest import ADMIN, auth
from tests.services.member.conftest import eventually

EVENTS = 20.0  # seconds an event may take to reach its subscriber, on a loaded machine

pytestmark = pytest.mark.usefixtures("two_phase")


def balance(shop, token: str) -> int:
    return shop.monolith.get("/api/members/me", headers=auth(token)).json()["data"]["points"]


def test_payment_completed_reaches_three_subscribers_and_a_refund_reverses_them(
    commerce, bootstrap
):
    with commerce("dual", bootstrap=bootstrap) as shop:
        _, token = shop.member()
        product = shop.product()
        before = shop.stock(product["id"])
        order = shop.place(token, product["id"], 2).json()["data"]
        key = f"pay-{uuid.uuid4()}"

        paid = shop.pay(token, order["id"], key)
        retried = shop.pay(token, order["id"], key)

        assert paid.status_code == 201, paid.text
        payment = paid.json()["data"]
        assert paid.headers["X-Served-By"] == "payment-service"
        assert retried.status_code == 201 and retried.headers["Idempotency-Replayed"] == "true"
        assert retried.json()["data"]["id"] == payment["id"]
        # Each subscriber acts on the one event.
        assert eventually(
            lambda: shop.order(token, order["id"])["data"]["status"] == "PAID", EVENTS
        )
        assert eventually(lambda: balance(shop, token) == payment["points_earned"], EVENTS)
        shipment = lambda: shop.monolith.get(f"/api/shipments/{order['id']}", headers=auth(token))  # noqa: E731
        assert eventually(lambda: shipment().status_code == 200, EVENTS)
        # A second payment of the paid order, under another key, is refused.
        twice = shop.pay(token, order["id"], f"pay-{uuid.uuid4()}")
        assert twice.status_code == 409 and twice.json()["error"]["code"] == "ORDER_ALREADY_PAID"

        refunded = shop.payments.post(f"/api/payments/{payment['id']}/refund", headers=auth(token))

        assert refunded.status_code == 200 and refunded.json()["data"]["status"] == "REFUNDED"
        assert eventually(
            lambda: shop.order(token, order["id"])["data"]["status"] == "REFUNDED", EVENTS
        )
        assert eventually(lambda: shop.stock(product["id"]) == before, EVENTS)  # by OrderRefunded
        assert eventually(lambda: shipment().json()["data"]["status"] == "CANCELLED", EVENTS)
        assert balance(shop, token) == 0  # the take-back was the member service's decision
        # One payment row, in both DBs of dual write; its two events in the payment DB.
        for engine in (shop.payment_data.writer.legacy, shop.payment_data.writer.new):
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT id, status FROM payments")).all()
                assert rows == [(payment["id"], "REFUNDED")]
        with shop.payment_data.writer.new.connect() as conn:
            kinds = conn.execute(sa.text("SELECT type FROM event_outbox ORDER BY sequence"))
            assert list(kinds.scalars()) == ["PaymentCompleted", "PaymentRefunded"]


def test_a_points_payment_the_balance_cannot_cover_is_refused_and_leaves_nothing(commerce):
    with commerce("single") as shop:
        _, token = shop.member()
        order = shop.place(token, shop.product()["id"]).json()["data"]

        refused = shop.pay(token, order["id"], method="points")

        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "INSUFFICIENT_POINTS"
        debits = shop.payments.get("/admin/points-debits", headers=ADMIN).json()["data"]
        assert debits["counts"] == {"refused": 1}
        with shop.payment_data.writer.new.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM payments")) == 0
        assert shop.order(token, order["id"])["data"]["status"] == "PLACED"


def test_the_order_lookup_gets_what_is_left_of_the_requests_budget(commerce, monkeypatch):
    """A payment whose caller allows 800 ms does not give its gRPC call to the order service
    the configured 5.5 s: the call would go on after the caller was answered."""
    with commerce() as shop:
        _, token = shop.member()
        order = shop.place(token, shop.product()["id"]).json()["data"]
        client = shop.apps["payment-service"].state.payments.orders
        deadlines: list[float] = []
        real = client.get_order

        def recording(order_id, member_id, *, timeout=None):
            deadlines.append(timeout)
            return real(order_id, member_id, timeout=timeout)

        monkeypatch.setattr(client, "get_order", recording)
        hurried = shop.payments.post(
            "/api/payments",
            json={"order_id": order["id"]},
            headers=auth(token, **{"X-Shop-Deadline-Ms": "800"}),
        )
        unhurried = shop.pay(token, shop.place(token, shop.product()["id"]).json()["data"]["id"])

        assert hurried.status_code == 201 and unhurried.status_code == 201
        assert 0 < deadlines[0] <= 0.8
        assert 0.8 < deadlines[-1] <= 5.0  # the service's own limit, not the 5.5 s timeout


def test_an_unknown_or_another_members_order_is_not_found_and_charges_nothing(commerce):
    with commerce() as shop:
        _, token = shop.member()
        _, other = shop.member()
        order = shop.place(token, shop.product()["id"]).json()["data"]

        for who, order_id in ((token, 987654), (other, order["id"])):
            answer = shop.pay(who, order_id)
            assert answer.status_code == 404
            assert answer.json()["error"]["code"] == "ORDER_NOT_FOUND"
        with shop.legacy.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM payments")) == 0


@pytest.mark.parametrize("mode", ["shared", "single"])
def test_an_orders_payment_is_found_by_its_order_id_in_every_data_mode(commerce, mode):
    """The payment service answers GET /api/payments?order_id=N as the monolith does, from
    the DB its data mode reads."""
    with commerce(mode) as shop:
        _, token = shop.member()
        _, other = shop.member()
        paid, unpaid = (shop.place(token, shop.product()["id"]).json()["data"] for _ in range(2))
        payment = shop.pay(token, paid["id"]).json()["data"]

        def listed(who: str, **params) -> httpx.Response:
            return shop.payments.get("/api/payments", params=params, headers=auth(who))

        found = listed(token, order_id=paid["id"])
        assert found.status_code == 200 and found.headers["X-Served-By"] == "payment-service"
        assert found.json()["data"] == {"items": [payment], "limit": 20, "offset": 0}
        assert listed(token, order_id=unpaid["id"]).json()["data"]["items"] == []
        assert listed(other, order_id=paid["id"]).json()["data"]["items"] == []
        assert [p["id"] for p in listed(token).json()["data"]["items"]] == [payment["id"]]
