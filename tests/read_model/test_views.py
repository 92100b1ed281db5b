"""The view rule on its own (read_model/views.py): no store, no broker. Whatever order and
however often the events arrive, a view ends as if each had come once, in sequence."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta

import pytest

from libs.events.envelope import Event, MalformedEvent
from read_model import views
from read_model.store import View

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def member(seq: int, points: int, name: str = "Kim") -> Event:
    data = {"member_id": 7, "email": "kim@example.com", "name": name, "phone": None}
    data |= {"points": points, "version": seq}
    return Event("MemberPointsChanged" if seq > 1 else "MemberRegistered", "member", "7", seq,
                 data, occurred_at=T0 + timedelta(seconds=seq))  # fmt: skip


def order(order_id: int, seq: int, status: str, at: int) -> Event:
    data = {"order_id": order_id, "member_id": 7, "status": status}
    kind = {"PLACED": "OrderPlaced", "PAID": "OrderPaid", "CANCELLED": "OrderCancelled",
            "REFUNDED": "OrderRefunded"}[status]  # fmt: skip
    if status == "PLACED":
        data |= {"total": 3000, "lines": [{"product_id": 1, "quantity": 2, "unit_price": 1500}]}
    return Event(kind, "order", str(order_id), seq, data, occurred_at=T0 + timedelta(seconds=at))


def payment(payment_id: int, order_id: int, seq: int, at: int) -> Event:
    status = "COMPLETED" if seq == 1 else "REFUNDED"
    data = {"payment_id": payment_id, "order_id": order_id, "member_id": 7, "amount": 3000,
            "method": "card", "status": status, "points_earned": 30, "points_spent": 0}  # fmt: skip
    kind = "PaymentCompleted" if seq == 1 else "PaymentRefunded"
    return Event(
        kind, "payment", str(payment_id), seq, data, occurred_at=T0 + timedelta(seconds=at)
    )


def history() -> list[Event]:
    """One member's life: registered, two orders (one paid then refunded, one cancelled)."""
    return [
        member(1, 0),
        order(10, 1, "PLACED", 10),
        payment(5, 10, 1, 11),
        order(10, 2, "PAID", 12),
        member(2, 30),
        order(11, 1, "PLACED", 20),
        order(11, 2, "CANCELLED", 21),
        payment(5, 10, 2, 30),
        order(10, 3, "REFUNDED", 31),
        member(3, 0),
    ]


def build(events: list[Event]) -> dict[tuple[str, str], View]:
    built: dict[tuple[str, str], View] = {}
    for event in events:
        for kind, key in views.targets(event):
            views.apply(built.setdefault((kind, key), View(kind, key)), event)
    return built


def test_in_order_the_views_show_the_member_its_orders_and_their_payments():
    built = build(history())
    page = built[(views.MY_PAGE, "7")]
    assert page.data["member"] == {
        "id": 7,
        "email": "kim@example.com",
        "name": "Kim",
        "phone": None,
    }
    assert page.data["points"] == 0
    assert [(o["id"], o["status"]) for o in page.data["orders"]] == [
        (11, "CANCELLED"),
        (10, "REFUNDED"),
    ]
    assert page.data["orders"][1]["payment"]["status"] == "REFUNDED"
    assert page.data["orders"][0]["payment"] is None
    detail = built[(views.ORDER, "10")]
    assert detail.data["status"] == "REFUNDED" and detail.data["total"] == 3000
    assert detail.data["lines"] == [{"product_id": 1, "quantity": 2, "unit_price": 1500}]
    assert [e["type"] for e in detail.data["timeline"]] == [
        "OrderPlaced", "PaymentCompleted", "OrderPaid", "PaymentRefunded", "OrderRefunded",
    ]  # fmt: skip
    assert page.applied == {"member:7": 3, "order:10": 3, "order:11": 2, "payment:5": 2}
    assert all(not v.held for v in built.values())


def test_a_duplicate_or_older_event_changes_nothing():
    page = View(views.MY_PAGE, "7")
    assert views.apply(page, member(1, 0))
    assert views.apply(page, member(2, 30))
    before = copy.deepcopy(page)
    assert not views.apply(page, member(2, 30))  # the same step again (another event id)
    assert not views.apply(page, member(1, 0))  # older
    assert page == before


def test_an_event_ahead_of_a_missing_one_is_held_until_it_arrives():
    detail = View(views.ORDER, "10")
    paid = order(10, 2, "PAID", 12)
    assert views.apply(detail, paid)
    assert detail.held == [paid.to_json()] and not views.servable(detail)
    assert not views.apply(detail, paid)  # held once, not twice
    assert views.apply(detail, order(10, 1, "PLACED", 10))
    assert detail.held == [] and detail.applied == {"order:10": 2}
    assert detail.data["status"] == "PAID" and views.servable(detail)


@pytest.mark.parametrize("seed", range(25))
def test_any_order_with_duplicates_converges_to_the_in_order_views(seed: int):
    rng = random.Random(seed)
    events = history()
    delivered = events + rng.sample(events, 4)  # redeliveries
    rng.shuffle(delivered)
    expected = build(events)
    got = build(delivered)
    assert {k: (v.data, v.applied, v.held) for k, v in got.items()} == {
        k: (v.data, v.applied, v.held) for k, v in expected.items()
    }


def test_a_full_page_keeps_its_most_recent_orders():
    page = View(views.MY_PAGE, "7")
    views.apply(page, member(1, 0))
    for order_id in range(100, 100 + views.RECENT_ORDERS + 5):
        views.apply(page, order(order_id, 1, "PLACED", order_id))
    ids = [o["id"] for o in page.data["orders"]]
    assert ids == list(range(124, 104, -1))
    # The page remembers only what it shows: the dropped orders' sequences went with them.
    assert sorted(page.applied) == sorted(["member:7", *(f"order:{i}" for i in ids)])
    before = copy.deepcopy(page)
    assert not views.apply(page, order(50, 1, "PLACED", 1))  # older than the page: ignored
    assert not views.apply(page, order(50, 2, "PAID", 2))  # not held either
    assert page == before


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (Event("OrderPlaced", "order", "1", 1, {"member_id": 7, "status": "PLACED"}), "order_id"),
        (
            Event(
                "OrderPlaced",
                "order",
                "1",
                1,
                {"order_id": 1, "member_id": 7, "status": "PLACED", "total": 5, "lines": []},
            ),
            "lines",
        ),
        (Event("ThingHappened", "thing", "1", 1, {}), "no view"),
        (
            Event(
                "MemberRegistered",
                "member",
                "7",
                1,
                {"member_id": 7, "email": "", "name": "K", "points": 0},
            ),
            "email",
        ),
    ],
)
def test_an_event_without_what_its_view_needs_is_refused_so_the_consumer_parks_it(event, reason):
    with pytest.raises(MalformedEvent, match=reason):
        for kind, key in views.targets(event):
            views.apply(View(kind, key), event)
