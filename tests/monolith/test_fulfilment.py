"""Fulfilment, the monolith's subscriber of `shop.payments`: a captured payment makes its
order's shipment ready to pack, a refund cancels it, each event applied once. The handler on
the legacy DB's own migrations; the whole path through a real broker and the relay."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import sqlalchemy as sa

from infra.settings import Settings
from libs.db import make_engine
from libs.events.envelope import Event
from monolith import invariants
from monolith.adapters.migrate import upgrade
from monolith.adapters.tables import event_inbox, shipments
from monolith.entrypoints.app import create_app
from monolith.service_layer import fulfilment
from tests.monolith.conftest import Shop
from tests.support.servers import serving


def payment_event(kind: str, sequence: int, order_id: int = 7) -> Event:
    data = {"payment_id": 70, "order_id": order_id, "member_id": 3}
    return Event(kind, "payment", "70", sequence, data)


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def apply(engine: sa.Engine, event: Event) -> str | None:
    with engine.begin() as conn:
        fulfilment.handle_payment_event(conn, event)
        return conn.scalar(sa.select(shipments.c.status).where(shipments.c.order_id == 7))


def test_a_completed_payment_makes_a_shipment_and_its_refund_cancels_it(engine):
    assert apply(engine, payment_event("PaymentCompleted", 1)) == "READY"
    assert apply(engine, payment_event("PaymentRefunded", 2)) == "CANCELLED"
    # A completion seen again (redelivered past the inbox, replayed) cannot revive it.
    assert apply(engine, payment_event("PaymentCompleted", 1)) == "CANCELLED"


def test_events_it_does_not_handle_change_nothing_and_bad_ones_are_refused(engine):
    assert apply(engine, payment_event("PaymentAuthorised", 1)) is None
    broken = Event("PaymentCompleted", "payment", "70", 1, {"payment_id": 70, "order_id": "7"})
    with pytest.raises(ValueError, match=r"data\.order_id"), engine.begin() as conn:
        fulfilment.handle_payment_event(conn, broken)  # the runner parks it


def _order_through_its_shipment(settings: Settings) -> tuple[list[str], int, str]:
    app = create_app(settings)
    with serving(app) as url, httpx.Client(base_url=url, timeout=15) as http:
        shop = Shop(http, app.state.engine)
        token = shop.member()
        order = shop.order(token, (shop.product("KNT-001")["id"], 1)).json()["data"]
        path = f"/api/shipments/{order['id']}"
        before = http.get(path, headers=shop.auth(token)).json()["error"]["code"]
        body = {"order_id": order["id"], "method": "card"}
        paid = http.post("/api/payments", json=body, headers=shop.auth(token)).json()["data"]
        seen = [_wait_for(http, path, shop.auth(token), "READY")]
        assert http.post(f"/api/payments/{paid['id']}/refund", headers=shop.auth(token))
        seen.append(_wait_for(http, path, shop.auth(token), "CANCELLED"))
        with shop.engine.connect() as conn:
            applied = conn.scalar(
                sa.select(sa.func.count())
                .select_from(event_inbox.inbox)
                .where(event_inbox.inbox.c.consumer_group == fulfilment.GROUP)
            )
        metrics = http.get("/metrics").text
    processed = f'shop_consumer_events_total{{group="{fulfilment.GROUP}",outcome="processed"}}'
    assert f"{processed} 2.0" in metrics
    return seen, applied, before


def _wait_for(http: httpx.Client, path: str, headers: dict, status: str) -> str:
    deadline, found = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        answer = http.get(path, headers=headers)
        found = answer.json()["data"]["status"] if answer.status_code == 200 else None
        if found == status:
            break
        time.sleep(0.1)
    return found or "none"


async def test_a_paid_order_is_shipped_and_a_refund_cancels_it_through_the_broker(
    tmp_path, bootstrap, unique
):
    """The relay publishes the monolith's payment events; its own fulfilment group, one of
    the topic's subscribers beside the member service, applies each once."""
    settings = Settings(
        data_dir=tmp_path, kafka_bootstrap=bootstrap, kafka_topic_prefix=unique("ship") + "."
    )
    seen, applied, before = await asyncio.to_thread(_order_through_its_shipment, settings)
    assert before == "SHIPMENT_NOT_FOUND"
    assert seen == ["READY", "CANCELLED"]
    assert applied == 2  # one inbox row per event: PaymentCompleted, PaymentRefunded


def test_the_invariant_names_a_paid_order_without_its_shipment(engine):
    now = "2026-12-01 00:00:00"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO orders (id, member_id, status, total, created_at, updated_at) "
                "VALUES (7, 3, 'PAID', 100, :t, :t), (8, 3, 'REFUNDED', 100, :t, :t)"
            ),
            {"t": now},
        )
        fulfilment.handle_payment_event(conn, payment_event("PaymentCompleted", 1, order_id=8))
        problems = invariants.shipments_match_orders(conn)
    assert problems == [
        "order 7 is PAID but its shipment is None",
        "order 8 is REFUNDED but its shipment is READY",
    ]


def test_a_shipment_is_read_by_its_order_s_id_and_only_by_its_member(shop: Shop):
    owner, stranger = shop.member("Owner"), shop.member("Stranger")
    me = shop.http.get("/api/members/me", headers=shop.auth(owner)).json()["data"]
    with shop.engine.begin() as conn:
        event = Event(
            "PaymentCompleted",
            "payment",
            "70",
            1,
            {"payment_id": 70, "order_id": 7, "member_id": me["id"]},
        )
        fulfilment.handle_payment_event(conn, event)
    mine = shop.http.get("/api/shipments/7", headers=shop.auth(owner))
    theirs = shop.http.get("/api/shipments/7", headers=shop.auth(stranger))
    assert mine.json()["data"]["status"] == "READY"
    assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "SHIPMENT_NOT_FOUND")
