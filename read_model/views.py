"""The views, and the rule that keeps them right under real delivery.

Two kinds of view, each one document (read_model/store):

- **my page** (`my_page`, keyed by the member's id), what the web and the app show a member:

      {"member": {"id", "email", "name", "phone"} | null,
       "points": int | null,
       "orders": [{"id", "status", "total", "placed_at",
                   "payment": {"id", "method", "status", "amount", "points_spent",
                               "points_earned"} | null}, ...]}

  `orders`: the member's `RECENT_ORDERS` most recent orders, newest (highest id) first.

- **order detail** (`order`, keyed by the order's id):

      {"id", "member_id", "status", "total", "placed_at",
       "lines": [{"product_id", "quantity", "unit_price"}, ...],
       "payment": {...as above} | null,
       "timeline": [{"type", "status", "at"}, ...]}

  `timeline`: every order and payment event applied to it, in the order they happened.

A view is fed by the events of several aggregates (a member, its orders, their payments),
each numbered 1, 2, 3... by its own `sequence` (docs/contracts.md). Kafka keeps order only
within a partition, and one aggregate's events can come from two outboxes while an
extraction hands over, so the view records, per aggregate, the last sequence it applied
(`View.applied`) and follows one rule:

- sequence <= applied: a duplicate or an older event. Nothing changes.
- sequence == applied + 1: applied; then every held event of that aggregate that is now next.
- sequence > applied + 1: an earlier event is missing. The event is **held** in the view (in
  the same document write as everything else, so holding survives a crash) and applied when
  the missing one arrives. Nothing is guessed: a status event never overtakes the event that
  placed the order.

A view is served only once it has what it needs: a my page once its member event arrived, an
order once it was placed. Everything here is pure: the caller reads the view, applies, and
writes it back with a version-guarded upsert (read_model/service_layer.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from libs.events.envelope import Event, MalformedEvent, parse
from read_model.store import View

MY_PAGE, ORDER = "my_page", "order"
KINDS = (MY_PAGE, ORDER)
RECENT_ORDERS = 20
TOPICS = ("shop.members", "shop.orders", "shop.payments")
PAYMENT_FIELDS = ("method", "status", "amount", "points_spent", "points_earned")
MEMBER_FIELDS = ("email", "name", "phone")


def targets(event: Event) -> list[tuple[str, str]]:
    """The views (kind, key) an event changes. MalformedEvent (the consumer parks it) for an
    aggregate this model does not know or data without the ids it needs."""
    if event.aggregate_type == "member":
        return [(MY_PAGE, str(event.count("member_id")))]
    if event.aggregate_type == "order":
        return [(ORDER, str(event.count("order_id"))), (MY_PAGE, str(event.count("member_id")))]
    if event.aggregate_type == "payment":
        order, member = str(event.count("order_id")), str(event.count("member_id"))
        return [(ORDER, order), (MY_PAGE, member)]
    raise MalformedEvent(f"the read model has no view of a {event.aggregate_type!r}")


def apply(view: View, event: Event) -> bool:
    """Applies `event` to `view` by the rule above, in place. True if the view changed
    (applied, or held), False for a duplicate or older event."""
    if _off_page(view, event):
        return False
    name = _aggregate(event)
    applied = view.applied.get(name, 0)
    if event.sequence <= applied or any(h["id"] == event.id for h in view.held):
        return False
    if event.sequence > applied + 1:
        if any(_aggregate_of(h) == name and h["sequence"] == event.sequence for h in view.held):
            return False  # the same step, announced twice (another event id): held already
        view.held.append(event.to_json())
        return True
    _change(view, event)
    view.applied[name] = event.sequence
    for held in _now_next(view, name):
        _change(view, held)
        view.applied[name] = held.sequence
    return True


def servable(view: View) -> bool:
    if view.kind == MY_PAGE:
        return view.data.get("member") is not None
    return view.data.get("status") is not None


# --- applying one event -------------------------------------------------------------------


def _blank(kind: str) -> dict[str, Any]:
    """A view's shape before its first event: every field there, unknown ones null."""
    if kind == MY_PAGE:
        return {"member": None, "points": None, "orders": []}
    fields = ("id", "member_id", "status", "total", "placed_at", "lines", "payment")
    return dict.fromkeys(fields) | {"timeline": []}


def _change(view: View, event: Event) -> None:
    if not view.data:
        view.data = _blank(view.kind)
    changes: dict[tuple[str, str], Callable[[View, Event], None]] = {
        (MY_PAGE, "member"): _page_member,
        (MY_PAGE, "order"): _page_order,
        (MY_PAGE, "payment"): _page_payment,
        (ORDER, "order"): _order_order,
        (ORDER, "payment"): _order_payment,
    }
    changes[(view.kind, event.aggregate_type)](view, event)


def _page_member(view: View, event: Event) -> None:
    view.data["member"] = {"id": event.count("member_id")} | {
        name: _text(event, name, optional=name == "phone") for name in MEMBER_FIELDS
    }
    view.data["points"] = event.count("points", minimum=0)


def _page_order(view: View, event: Event) -> None:
    entry = _page_entry(view, event.count("order_id"))
    entry["status"] = _status(event)
    if event.type == "OrderPlaced":
        entry["total"] = event.count("total", minimum=0)
        entry["placed_at"] = event.occurred_at.isoformat()


def _page_payment(view: View, event: Event) -> None:
    _page_entry(view, event.count("order_id"))["payment"] = _payment(event)


def _page_entry(view: View, order_id: int) -> dict[str, Any]:
    """The page's entry for an order, added if missing (`_off_page` kept older orders out),
    dropping the oldest of a full page."""
    orders: list[dict[str, Any]] = view.data.setdefault("orders", [])
    entry = next((o for o in orders if o["id"] == order_id), None)
    if entry is not None:
        return entry
    entry = {"id": order_id, "status": None, "total": None, "placed_at": None, "payment": None}
    orders.append(entry)
    orders.sort(key=lambda o: o["id"], reverse=True)
    for dropped in orders[RECENT_ORDERS:]:
        _forget(view, dropped)
    del orders[RECENT_ORDERS:]
    return entry


def _off_page(view: View, event: Event) -> bool:
    """An order or payment event of an order older than every order a full page keeps: the
    page does not show it, and remembers nothing of it."""
    if view.kind != MY_PAGE or event.aggregate_type not in ("order", "payment"):
        return False
    orders = view.data.get("orders", [])
    order_id = event.count("order_id")
    if len(orders) < RECENT_ORDERS or any(o["id"] == order_id for o in orders):
        return False
    return order_id < orders[-1]["id"]


def _forget(view: View, entry: dict[str, Any]) -> None:
    """An order leaves the page: its sequences (and its payment's) and held events go too."""
    view.applied.pop(f"order:{entry['id']}", None)
    if entry["payment"] is not None:
        view.applied.pop(f"payment:{entry['payment']['id']}", None)
    view.held = [h for h in view.held if h["data"].get("order_id") != entry["id"]]


def _order_order(view: View, event: Event) -> None:
    data = view.data
    data["id"], data["member_id"] = event.count("order_id"), event.count("member_id")
    data["status"] = _status(event)
    data.setdefault("payment", None)
    if event.type == "OrderPlaced":
        data["total"] = event.count("total", minimum=0)
        data["placed_at"] = event.occurred_at.isoformat()
        data["lines"] = _lines(event)
    _timeline(view, event, data["status"])


def _order_payment(view: View, event: Event) -> None:
    view.data.setdefault("id", event.count("order_id"))
    view.data.setdefault("member_id", event.count("member_id"))
    view.data.setdefault("status", None)
    view.data["payment"] = payment = _payment(event)
    _timeline(view, event, payment["status"])


def _timeline(view: View, event: Event, status: str) -> None:
    timeline: list[dict[str, Any]] = view.data.setdefault("timeline", [])
    timeline.append({"type": event.type, "status": status, "at": event.occurred_at.isoformat()})
    timeline.sort(key=lambda entry: entry["at"])


# --- reading an event's data strictly (MalformedEvent: the consumer parks it) --------------


def _status(event: Event) -> str:
    return _text(event, "status")


def _payment(event: Event) -> dict[str, Any]:
    return {"id": event.count("payment_id")} | {
        "method": _text(event, "method"),
        "status": _text(event, "status"),
        "amount": event.count("amount", minimum=0),
        "points_spent": event.count("points_spent", minimum=0),
        "points_earned": event.count("points_earned", minimum=0),
    }


def _lines(event: Event) -> list[dict[str, int]]:
    lines = event.data.get("lines")
    if not isinstance(lines, list) or not lines:
        raise MalformedEvent("data.lines must be a non-empty list")
    out = []
    for line in lines:
        if not isinstance(line, dict):
            raise MalformedEvent("each of data.lines must be an object")
        probe = Event(event.type, event.aggregate_type, event.aggregate_id, 1, line)
        out.append(
            {
                "product_id": probe.count("product_id"),
                "quantity": probe.count("quantity"),
                "unit_price": probe.count("unit_price", minimum=0),
            }
        )
    return out


def _text(event: Event, name: str, *, optional: bool = False) -> Any:
    value = event.data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"data.{name} must be a non-empty string, not {value!r}")
    return value


# --- the aggregates of a view --------------------------------------------------------------


def _aggregate(event: Event) -> str:
    return f"{event.aggregate_type}:{event.aggregate_id}"


def _aggregate_of(held: dict[str, Any]) -> str:
    return f"{held['aggregate_type']}:{held['aggregate_id']}"


def _now_next(view: View, name: str) -> Iterator[Event]:
    """Takes out of `held`, one by one, each event of aggregate `name` that is next."""
    while True:
        expected = view.applied.get(name, 0) + 1
        index = next(
            (
                i
                for i, h in enumerate(view.held)
                if _aggregate_of(h) == name and h["sequence"] == expected
            ),
            None,
        )
        if index is None:
            # Anything left of this aggregate at or below what is applied is stale.
            view.held = [
                h
                for h in view.held
                if _aggregate_of(h) != name or h["sequence"] > view.applied.get(name, 0)
            ]
            return
        held = view.held.pop(index)
        yield parse(json.dumps(held).encode())  # the held copy is the envelope's own JSON
