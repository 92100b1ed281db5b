"""Every order status change is an event on `shop.orders`, keyed by the order's id, written
in the change's own transaction: a refused change announces nothing."""

from __future__ import annotations

import asyncio
import time

import httpx
import sqlalchemy as sa

from infra.settings import Settings
from libs.events.envelope import parse
from monolith import invariants
from monolith.adapters.tables import event_outbox
from monolith.entrypoints.app import create_app
from tests.monolith.conftest import Shop
from tests.support.kafka_clients import consume
from tests.support.servers import serving


def order_events(shop: Shop, order_id: int) -> list:
    with shop.engine.connect() as conn:
        rows = conn.execute(
            sa.select(event_outbox.c.topic, event_outbox.c.payload)
            .where(event_outbox.c.aggregate_type == "order")
            .where(event_outbox.c.aggregate_id == str(order_id))
            .order_by(event_outbox.c.sequence)
        ).all()
    assert {topic for topic, _ in rows} <= {"shop.orders"}
    return [parse(payload) for _, payload in rows]


def _placed(shop: Shop, token: str, qty: int = 1) -> dict:
    answer = shop.order(token, (shop.product("KNT-001")["id"], qty))
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def test_placed_paid_refunded_are_announced_in_order_with_what_changed(shop: Shop):
    token = shop.member()
    order = _placed(shop, token, qty=2)
    paid = shop.http.post(
        "/api/payments", json={"order_id": order["id"], "method": "card"}, headers=shop.auth(token)
    ).json()["data"]
    refund = shop.http.post(f"/api/payments/{paid['id']}/refund", headers=shop.auth(token))
    assert refund.status_code == 200, refund.text

    placed, paid_event, refunded = order_events(shop, order["id"])
    assert [(e.type, e.sequence) for e in (placed, paid_event, refunded)] == [
        ("OrderPlaced", 1),
        ("OrderPaid", 2),
        ("OrderRefunded", 3),
    ]
    assert {e.aggregate_id for e in (placed, paid_event, refunded)} == {str(order["id"])}
    line = order["lines"][0]
    assert placed.data["total"] == order["total"]
    assert placed.data["lines"] == [
        {"product_id": line["product_id"], "quantity": 2, "unit_price": line["unit_price"]}
    ]
    assert (paid_event.data["previous_status"], paid_event.data["payment_id"]) == (
        "PLACED",
        paid["id"],
    )
    assert (refunded.data["status"], refunded.data["payment_id"]) == ("REFUNDED", paid["id"])
    with shop.engine.connect() as conn:
        assert invariants.order_events_match_status(conn) == []


def test_a_cancel_is_announced_and_a_refused_change_announces_nothing(shop: Shop):
    token = shop.member()
    order = _placed(shop, token)
    cancelled = shop.http.post(f"/api/orders/{order['id']}/cancel", headers=shop.auth(token))
    assert cancelled.status_code == 200, cancelled.text
    again = shop.http.post(f"/api/orders/{order['id']}/cancel", headers=shop.auth(token))
    pay = shop.http.post(
        "/api/payments", json={"order_id": order["id"], "method": "card"}, headers=shop.auth(token)
    )
    assert again.status_code == 409 and pay.status_code == 409
    assert [(e.type, e.sequence) for e in order_events(shop, order["id"])] == [
        ("OrderPlaced", 1),
        ("OrderCancelled", 2),
    ]
    limited = shop.product("LTD-001")
    too_many = shop.order(token, (limited["id"], limited["stock"] + 1))
    assert too_many.status_code == 409  # OUT_OF_STOCK: no order, so no OrderPlaced
    with shop.engine.connect() as conn:
        assert invariants.order_events_match_status(conn) == []


def test_the_invariant_names_an_order_whose_change_went_unannounced(shop: Shop):
    token = shop.member()
    order = _placed(shop, token)
    with shop.engine.begin() as conn:  # a status change that bypassed the service layer
        conn.execute(
            sa.text("UPDATE orders SET status = 'CANCELLED' WHERE id = :id"), {"id": order["id"]}
        )
        problems = invariants.order_events_match_status(conn)
    assert problems == [
        f"order {order['id']} is CANCELLED: announced [(1, 'OrderPlaced')], expected "
        "[(1, 'OrderPlaced'), (2, 'OrderCancelled')]"
    ]


def _place_pay_refund(settings: Settings) -> int:
    """Runs the monolith until its relay has had the order's three events; returns its id."""
    app = create_app(settings)
    with serving(app) as url, httpx.Client(base_url=url, timeout=15) as http:
        shop = Shop(http, app.state.engine)
        token = shop.member()
        order = _placed(shop, token)
        body = {"order_id": order["id"], "method": "card"}
        paid = http.post("/api/payments", json=body, headers=shop.auth(token)).json()["data"]
        refund = http.post(f"/api/payments/{paid['id']}/refund", headers=shop.auth(token))
        assert refund.status_code == 200, refund.text
        waiting = sa.select(sa.func.count()).where(event_outbox.c.published_at.is_(None))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with shop.engine.connect() as conn:  # a short read: the relay writes this table
                if not conn.scalar(waiting.select_from(event_outbox)):
                    break
            time.sleep(0.1)
    return order["id"]


async def test_the_relay_publishes_an_orders_history_under_its_key_in_order(
    tmp_path, bootstrap, make_consumer, unique
):
    """Through a real broker (the dev broker and Apache Kafka): one key per order, so its
    events share a partition and arrive in the order they happened."""
    prefix = unique("orders") + "."
    settings = Settings(data_dir=tmp_path, kafka_bootstrap=bootstrap, kafka_topic_prefix=prefix)
    order_id = await asyncio.to_thread(_place_pay_refund, settings)
    consumer = make_consumer(prefix + "shop.orders", group_id=unique("order-reader"))
    await consumer.start()
    # At least once: a relay batch retried after a failure publishes again (consumers keep
    # an inbox). The first arrival of each event is in the order the changes happened.
    received, events, seen = [], [], set()
    try:
        while len(events) < 3:
            for message in await consume(consumer, 1, within=30):
                received.append(message)
                event = parse(message.value)
                if event.id not in seen:
                    seen.add(event.id)
                    events.append(event)
    finally:
        await consumer.stop()
    assert [(e.type, e.sequence) for e in events] == [
        ("OrderPlaced", 1),
        ("OrderPaid", 2),
        ("OrderRefunded", 3),
    ]
    assert {m.key for m in received} == {str(order_id).encode()}
    assert len({m.partition for m in received}) == 1
