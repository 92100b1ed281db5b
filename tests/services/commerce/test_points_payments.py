"""The talk's double spend, once the payment service takes the payments (stages 5-8): six
concurrent points payments of a balance that covers one. tests/services/member/test_points.py
proves it for stages 0-4, where the monolith takes them; here the payment service asks the
member service (the points' owner, in its own DB since stage 4) to debit each, and the owner
checks and debits in one transaction, whatever the payment service's data mode."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from libs.events.envelope import Event
from monolith import invariants
from services.member.service_layer import points as member_points
from tests.services.commerce.conftest import ADMIN, Commerce, auth

pytestmark = pytest.mark.usefixtures("two_phase")  # dual write on PostgreSQL prepares

STAGES = [
    pytest.param("shared", id="stages-5-6"),
    pytest.param("dual", id="stage-7"),
    pytest.param("single", id="stage-8"),
]
PAYMENTS = 6


@pytest.mark.parametrize("mode", STAGES)
def test_concurrent_points_payments_never_spend_more_than_the_balance(commerce, mode: str):
    with commerce(mode) as shop:
        member_id, token = shop.member()
        product = shop.product()
        credit(shop, member_id, product["price"])
        orders = [shop.place(token, product["id"]).json()["data"] for _ in range(PAYMENTS)]

        def pay(order: dict) -> httpx.Response:
            # A client per caller: six requests in flight at once, as six browsers send them.
            with httpx.Client(base_url=shop.urls["payment-service"], timeout=20) as client:
                headers = auth(token, **{"Idempotency-Key": f"pay-{uuid.uuid4()}"})
                body = {"order_id": order["id"], "method": "points"}
                return client.post("/api/payments", json=body, headers=headers)

        with ThreadPoolExecutor(PAYMENTS) as pool:
            replies = list(pool.map(pay, orders))

        statuses = sorted(reply.status_code for reply in replies)
        assert statuses == [201] + [409] * (PAYMENTS - 1), [reply.text for reply in replies]
        assert {r.headers["X-Served-By"] for r in replies} == {"payment-service"}
        refused = {r.json()["error"]["code"] for r in replies if r.status_code == 409}
        assert refused == {"INSUFFICIENT_POINTS"}
        (captured,) = [r.json()["data"] for r in replies if r.status_code == 201]
        # The DB of record of the members: the legacy one while the member service shares it
        # (its own DB trails it by the batch sync's lag), its own once it does not.
        members = shop.apps["member-service"].state.data
        points = members.writer.legacy if members.mode.value == "shared" else members.writer.new
        with points.connect() as conn:
            balance = conn.scalar(
                sa.text("SELECT points FROM members WHERE id = :id"), {"id": member_id}
            )
            ledger = conn.execute(
                sa.text("SELECT reason, delta FROM point_ledger WHERE member_id = :id ORDER BY id"),
                {"id": member_id},
            ).all()
            assert invariants.points_match_ledger(conn) == []
        assert balance == 0
        assert [tuple(line) for line in ledger] == [
            ("earn", product["price"]),
            ("spend", -product["price"]),
        ]
        debits = shop.payments.get("/admin/points-debits", headers=ADMIN).json()["data"]
        assert debits["counts"] == {"used": 1, "refused": PAYMENTS - 1}
        for engine in payment_dbs(shop, mode):
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT id, order_id FROM payments")).all()
            assert [tuple(row) for row in rows] == [(captured["id"], captured["order_id"])]


def credit(shop: Commerce, member_id: int, amount: int) -> None:
    """Gives the member points the way a card payment's event does."""
    payment_id = 10**9 + uuid.uuid4().int % 10**8
    body = {"member_id": member_id, "payment_id": payment_id, "points_earned": amount}
    event = Event("PaymentCompleted", "payment", str(payment_id), 1, body)
    assert member_points.apply_payment_event(event, shop.apps["member-service"].state.data)


def payment_dbs(shop: Commerce, mode: str) -> list[sa.Engine]:
    """The DBs that hold payments in the payment service's data mode."""
    legacy, new = shop.payment_data.writer.legacy, shop.payment_data.writer.new
    return {"shared": [legacy], "dual": [legacy, new], "single": [new]}[mode]
