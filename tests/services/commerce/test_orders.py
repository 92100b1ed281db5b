"""The order service places orders by holding their stock at the catalogue's owner (the
monolith), keyed by the order's id, and every way that can fail halfway leaves no stock held
for an order that does not exist: a refusal leaves nothing, a lost answer releases the hold
and voids it, what a dead request left PENDING is released by the recovery, and an unpaid
order expires and its stock comes back by its event."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from libs.errors import Unavailable
from services.order.domain.orders import LineRequest
from services.order.service_layer import orders
from tests.services.commerce.conftest import ADMIN, auth
from tests.services.member.conftest import eventually

pytestmark = pytest.mark.usefixtures("two_phase")  # dual write on PostgreSQL prepares


@pytest.mark.parametrize("mode", ["shared", "dual", "single"])
def test_an_order_holds_its_stock_once_in_every_data_mode(commerce, mode):
    with commerce(mode) as shop:
        _, token = shop.member()
        product = shop.product()
        before = shop.stock(product["id"])

        placed = shop.place(token, product["id"], 2)

        assert placed.status_code == 201, placed.text
        order = placed.json()["data"]
        assert order["status"] == "PLACED" and order["total"] == 2 * product["price"]
        assert placed.headers["X-Served-By"] == "order-service"
        assert shop.stock(product["id"]) == before - 2
        hold = shop.hold(order["id"])["data"]
        assert hold["status"] == "held" and hold["lines"][0]["quantity"] == 2
        # The call is idempotent on the order: a repeat holds nothing more.
        again = shop.monolith.put(
            f"/internal/stock-holds/{order['id']}",
            json={"items": [{"product_id": product["id"], "quantity": 2}]},
            headers=ADMIN,
        )
        assert again.json()["data"]["applied"] is False
        assert shop.stock(product["id"]) == before - 2
        # Where the order is depends on the mode: the legacy DB, both, or the order DB.
        data = shop.order_data
        in_legacy = order["id"] in shop.order_statuses(data.writer.legacy)
        in_new = order["id"] in shop.order_statuses(data.writer.new)
        assert (in_legacy, in_new) == {
            "shared": (True, in_new),  # the sync job copies it soon after
            "dual": (True, True),
            "single": (False, True),
        }[mode]
        assert shop.order(token, order["id"])["data"]["lines"] == order["lines"]


def test_a_refused_hold_leaves_no_order_and_holds_nothing(commerce):
    with commerce() as shop:
        _, token = shop.member()
        product = shop.product()
        with shop.legacy.begin() as conn:  # the last one left
            conn.execute(sa.text("UPDATE products SET stock = 1 WHERE id = :id"), product)

        unknown = shop.place(token, 987654)
        too_many = shop.place(token, product["id"], 2)

        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "PRODUCT_NOT_FOUND"
        assert too_many.status_code == 409
        assert too_many.json()["error"]["code"] == "OUT_OF_STOCK"
        assert shop.orders.get("/api/orders", headers=auth(token)).json()["data"]["items"] == []
        assert shop.stock(product["id"]) == 1
        assert shop.order_statuses(shop.legacy) == {}  # the PENDING rows went with the refusal


def test_a_lost_answer_releases_the_hold_and_a_late_hold_is_refused(commerce, monkeypatch):
    with commerce() as shop:
        _, token = shop.member()
        product = shop.product()
        before = shop.stock(product["id"])
        catalogue = shop.apps["order-service"].state.catalogue
        real_hold = catalogue.hold

        def held_but_lost(order_id, lines):
            real_hold(order_id, lines)  # the catalogue holds the stock...
            raise Unavailable("CATALOGUE_UNAVAILABLE", "...and the answer is lost")

        monkeypatch.setattr(catalogue, "hold", held_but_lost)
        lost = shop.place(token, product["id"], 3)

        assert lost.status_code == 503
        assert shop.stock(product["id"]) == before  # given back
        (order_id,) = [oid for oid, s in shop.order_statuses(shop.legacy).items() if s == "VOID"]
        assert shop.hold(order_id)["data"]["status"] == "released"
        late = shop.monolith.put(
            f"/internal/stock-holds/{order_id}",
            json={"items": [{"product_id": product["id"], "quantity": 3}]},
            headers=ADMIN,
        )
        assert late.status_code == 409 and late.json()["error"]["code"] == "HOLD_RELEASED"
        assert shop.stock(product["id"]) == before


def test_the_recovery_releases_what_a_dead_request_left_pending(commerce):
    with commerce() as shop:
        member_id, token = shop.member()
        product = shop.product()
        before = shop.stock(product["id"])
        data, catalogue = shop.order_data, shop.apps["order-service"].state.catalogue
        # A request that died after the catalogue held its stock, before the order was placed.
        order_id = orders._write_pending(data, member_id)
        catalogue.hold(order_id, [LineRequest(product["id"], 4)])
        assert shop.stock(product["id"]) == before - 4

        young = orders.recover(data, catalogue, stale_after=3600, expire_after=3600)
        assert young == {"voided": 0, "expired": 0}  # a request may still be working on it
        found = orders.recover(data, catalogue, stale_after=0, expire_after=3600)

        assert found == {"voided": 1, "expired": 0}
        assert shop.order_statuses(shop.legacy)[order_id] == "VOID"
        assert shop.stock(product["id"]) == before
        assert shop.order(token, order_id)["error"]["code"] == "ORDER_NOT_FOUND"


def test_an_unpaid_order_expires_and_its_event_releases_the_stock(commerce, bootstrap):
    """Once the order service owns orders (dual write on) it cancels an order left unpaid
    (OrderCancelled, from its own outbox); the catalogue's consumer releases the stock."""
    with commerce("dual", bootstrap=bootstrap) as shop:
        _, token = shop.member()
        product = shop.product()
        before = shop.stock(product["id"])
        order = shop.place(token, product["id"], 2).json()["data"]
        data, catalogue = shop.order_data, shop.apps["order-service"].state.catalogue

        expired = orders.recover(data, catalogue, stale_after=3600, expire_after=0)

        assert expired == {"voided": 0, "expired": 1}
        assert shop.order(token, order["id"])["data"]["status"] == "CANCELLED"
        assert eventually(lambda: shop.stock(product["id"]) == before, timeout=30)
        assert shop.hold(order["id"])["data"]["status"] == "released"
        with data.writer.new.connect() as conn:
            kinds = conn.execute(
                sa.text("SELECT type FROM event_outbox WHERE aggregate_id = :id ORDER BY sequence"),
                {"id": str(order["id"])},
            ).scalars()
            assert list(kinds) == ["OrderPlaced", "OrderCancelled"]


def test_while_the_monolith_owns_orders_none_expires(commerce):
    """In the shared-DB stage the legacy orders are the monolith's, which never expired one:
    the order service's recovery gives up only its own unfinished placements then."""
    with commerce() as shop:
        _, token = shop.member()
        order = shop.place(token, shop.product()["id"]).json()["data"]
        data, catalogue = shop.order_data, shop.apps["order-service"].state.catalogue

        assert orders.recover(data, catalogue, stale_after=3600, expire_after=0) == {
            "voided": 0,
            "expired": 0,
        }
        assert shop.order(token, order["id"])["data"]["status"] == "PLACED"


def test_a_member_cancels_and_cannot_cancel_twice_nor_see_another_members_order(commerce):
    with commerce("single") as shop:
        _, token = shop.member()
        _, other = shop.member()
        order = shop.place(token, shop.product()["id"]).json()["data"]

        assert shop.order(other, order["id"])["error"]["code"] == "ORDER_NOT_FOUND"
        cancelled = shop.orders.post(f"/api/orders/{order['id']}/cancel", headers=auth(token))
        again = shop.orders.post(f"/api/orders/{order['id']}/cancel", headers=auth(token))

        assert cancelled.json()["data"]["status"] == "CANCELLED"
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "ORDER_NOT_CANCELLABLE"


def test_a_refund_that_overtakes_its_payment_applies_both_and_the_late_payment_nothing(commerce):
    """A payment captured while the payment service shared the legacy DB has its
    PaymentCompleted in the legacy outbox; refunded right after dual write began, its
    PaymentRefunded is in the payment DB's. Two relays keep no order between them, so the
    order service may see the refund first (seen in the demo walk, at stage 7)."""
    from libs.events.envelope import Event

    with commerce("dual") as shop:
        member_id, token = shop.member()
        order = shop.place(token, shop.product()["id"]).json()["data"]
        data = {"order_id": order["id"], "member_id": member_id, "payment_id": 77}

        refunded = orders.apply_payment_event(
            Event("PaymentRefunded", "payment", "77", 2, data), shop.order_data
        )
        late = orders.apply_payment_event(
            Event("PaymentCompleted", "payment", "77", 1, data), shop.order_data
        )

        assert (refunded, late) == (True, False)
        assert shop.order(token, order["id"])["data"]["status"] == "REFUNDED"
        with shop.order_data.writer.new.connect() as conn:
            kinds = conn.execute(
                sa.text("SELECT type FROM event_outbox WHERE aggregate_id = :id ORDER BY sequence"),
                {"id": str(order["id"])},
            ).scalars()
            assert list(kinds) == ["OrderPlaced", "OrderPaid", "OrderRefunded"]
