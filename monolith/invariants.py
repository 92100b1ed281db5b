"""Invariants of the legacy DB that must hold whatever traffic it took. The demo and the tests
check them after load; each returns human-readable violations (empty when all is well).

The order service's PENDING orders (domain/orders.py) are not placed yet: no invariant of
orders counts them, only `holds_match_orders` looks at whether one holds stock."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any, cast

import sqlalchemy as sa

from monolith.adapters.tables import (
    event_inbox,
    event_outbox,
    members,
    order_lines,
    orders,
    payments,
    point_ledger,
    products,
    shipments,
    stock_holds,
)
from monolith.domain.holds import HELD, RELEASED
from monolith.domain.orders import CANCELLED, HIDDEN, HOLDS_STOCK, PAID, PLACED, REFUNDED
from monolith.service_layer.events import ORDERS_TOPIC
from services.member import events as member_events
from services.payment.domain.payments import CAPTURED
from services.payment.domain.payments import REFUNDED as PAYMENT_REFUNDED

_shown = orders.c.status.not_in(HIDDEN)  # the orders that are placed (not PENDING)


def check_all(conn: sa.Connection, stock_before: Mapping[int, int]) -> list[str]:
    return [
        *stock_is_conserved(conn, stock_before),
        *order_totals_match_lines(conn),
        *payments_match_orders(conn),
        *order_events_match_status(conn),
        *member_events_match_versions(conn),
        *points_match_ledger(conn),
        *holds_match_orders(conn, conn),
    ]


def stock_totals(conn: sa.Connection) -> dict[int, int]:
    """Per product: stock left + quantity in held stock holds. A hold and its release move
    units between the two terms, whoever owns the order; nothing else may change the sum."""
    held: Counter[int] = Counter()
    for lines in conn.scalars(sa.select(stock_holds.c.lines).where(stock_holds.c.status == HELD)):
        for line in lines:
            held[line["product_id"]] += line["quantity"]
    stock = conn.execute(sa.select(products.c.id, products.c.stock)).all()
    return {pid: left + held[pid] for pid, left in stock}


def stock_is_conserved(conn: sa.Connection, totals_before: Mapping[int, int]) -> list[str]:
    now = stock_totals(conn)
    return [
        f"product {pid}: stock + held was {before}, is {now.get(pid)}"
        for pid, before in totals_before.items()
        if now.get(pid) != before
    ]


def order_totals_match_lines(conn: sa.Connection) -> list[str]:
    line_sum = (
        sa.select(sa.func.sum(order_lines.c.unit_price * order_lines.c.quantity))
        .where(order_lines.c.order_id == orders.c.id)
        .scalar_subquery()
    )
    rows = conn.execute(sa.select(orders.c.id, orders.c.total, line_sum).where(_shown)).all()
    return [
        f"order {oid}: total {total} != lines {lines}"
        for oid, total, lines in rows
        if total != lines
    ]


def payments_match_orders(conn: sa.Connection) -> list[str]:
    """A paid order has one captured payment of its total; a refunded order one refunded
    payment; no other order has a payment."""
    expected = {PAID: CAPTURED, REFUNDED: PAYMENT_REFUNDED}
    rows = conn.execute(
        sa.select(
            orders.c.id, orders.c.status, orders.c.total, payments.c.status, payments.c.amount
        )
        .outerjoin(payments, payments.c.order_id == orders.c.id)
        .where(_shown)
    ).all()
    problems = []
    for oid, status, total, pay_status, amount in rows:
        if expected.get(status) != pay_status:
            problems.append(f"order {oid} is {status} but its payment is {pay_status}")
        elif pay_status is not None and amount != total:
            problems.append(f"order {oid}: paid {amount}, total {total}")
    return problems


# The events an order in each status has announced, in order (service_layer/events.py).
ORDER_HISTORY = {
    PLACED: ["OrderPlaced"],
    PAID: ["OrderPlaced", "OrderPaid"],
    CANCELLED: ["OrderPlaced", "OrderCancelled"],
    REFUNDED: ["OrderPlaced", "OrderPaid", "OrderRefunded"],
}


def order_events_match_status(conn: sa.Connection) -> list[str]:
    """Every order announced each of its status changes once, in order (sequences 1, 2, ...),
    on `shop.orders`: the outbox holds exactly the history its status implies. (A legacy DB
    with orders from before the monolith announced them reports those.)"""
    rows = conn.execute(
        sa.select(event_outbox.c.aggregate_id, event_outbox.c.sequence, event_outbox.c.type)
        .where(event_outbox.c.topic == ORDERS_TOPIC)
        .order_by(event_outbox.c.aggregate_id, event_outbox.c.sequence)
    ).all()
    announced: dict[str, list[tuple[int, str]]] = {}
    for aggregate_id, sequence, kind in rows:
        announced.setdefault(aggregate_id, []).append((sequence, kind))
    problems = []
    for oid, status in conn.execute(sa.select(orders.c.id, orders.c.status).where(_shown)).all():
        expected = list(enumerate(ORDER_HISTORY[status], start=1))
        found = announced.pop(str(oid), [])
        if found != expected:
            problems.append(f"order {oid} is {status}: announced {found}, expected {expected}")
    problems += [f"events for an order {oid} that does not exist" for oid in announced]
    return problems


def member_events_match_versions(conn: sa.Connection) -> list[str]:
    """Every change of a member was announced once, in order, on `shop.members`: a member at
    version N has the events 1..N, and the last of them carries the member's state as it is.
    The outbox may be the union of several processes' (a member's events are in the legacy
    DB's until the members' dual write, in the member DB's after: infra/demo/snapshot.py)."""
    rows = conn.execute(
        sa.select(event_outbox.c.aggregate_id, event_outbox.c.sequence, event_outbox.c.payload)
        .where(event_outbox.c.topic == member_events.TOPIC)
        .order_by(event_outbox.c.aggregate_id, event_outbox.c.sequence)
    ).all()
    announced: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for aggregate_id, sequence, payload in rows:
        announced.setdefault(aggregate_id, []).append((sequence, json.loads(payload)["data"]))
    state = [members.c[name] for name in member_events.COLUMNS]
    problems = []
    for member in conn.execute(sa.select(*state)).mappings():
        found = announced.pop(str(member["id"]), [])
        sequences = [sequence for sequence, _ in found]
        if sequences != list(range(1, member["version"] + 1)):
            problems.append(
                f"member {member['id']} is at version {member['version']}: announced "
                f"sequences {sequences}"
            )
            continue
        now = {"member_id": member["id"]} | {k: member[k] for k in member_events.STATE}
        last = {k: found[-1][1].get(k) for k in now} if found else now
        if last != now:
            problems.append(f"member {member['id']} is {now}: its last event says {last}")
    problems += [f"events for a member {mid} that does not exist" for mid in announced]
    return problems


def shipments_match_orders(conn: sa.Connection) -> list[str]:
    """Once fulfilment has applied every payment event: a paid order has a shipment ready to
    pack, a refunded order a cancelled one, and no other order has one."""
    expected = {PAID: "READY", REFUNDED: "CANCELLED"}
    rows = conn.execute(
        sa.select(orders.c.id, orders.c.status, shipments.c.status)
        .outerjoin(shipments, shipments.c.order_id == orders.c.id)
        .where(_shown)
    ).all()
    return [
        f"order {oid} is {status} but its shipment is {shipment}"
        for oid, status, shipment in rows
        if expected.get(status) != shipment
    ]


def holds_match_orders(holds_conn: sa.Connection, orders_conn: sa.Connection) -> list[str]:
    """Stock is held exactly for the orders that keep it: a placed or paid order's hold is
    held, a cancelled or refunded order's is released, and no held hold belongs to an order
    that is missing or not placed yet. The holds are the catalogue's (the legacy DB); the
    orders wherever they live (the legacy DB, the order DB), so two connections, which may be
    one."""
    found = holds_conn.execute(sa.select(stock_holds.c.order_id, stock_holds.c.status))
    holds = {oid: status for oid, status in found}
    statuses = {
        oid: status for oid, status in orders_conn.execute(sa.select(orders.c.id, orders.c.status))
    }
    problems = [
        f"order {oid} is {status} but its hold is {holds.get(oid)}"
        for oid, status in statuses.items()
        if status not in HIDDEN and holds.get(oid) != (HELD if status in HOLDS_STOCK else RELEASED)
    ]
    for oid, hold in holds.items():
        if hold == HELD and oid not in statuses:
            problems.append(f"order {oid} does not exist but its hold is held")
        elif hold == HELD and statuses[oid] in HIDDEN:
            problems.append(f"order {oid} is {statuses[oid]} but its hold is held")
    return problems


def every_event_consumed_once(conn: sa.Connection, group: str, topic: str) -> list[str]:
    """Once every published event has been consumed: the group's inbox holds each event of
    `topic` exactly once (the inbox's key makes a second impossible), and nothing else. The
    outbox may be the union of several processes' (infra/demo/snapshot.py)."""
    published = set(
        conn.scalars(sa.select(event_outbox.c.event_id).where(event_outbox.c.topic == topic))
    )
    inbox = event_inbox.inbox
    consumed = set(conn.scalars(sa.select(inbox.c.event_id).where(inbox.c.consumer_group == group)))
    problems = [
        f"{group}: event {e} of {topic} never applied" for e in sorted(published - consumed)
    ]
    problems += [
        f"{group}: applied {e}, which no outbox holds" for e in sorted(consumed - published)
    ]
    return problems


def points_match_ledger(conn: sa.Connection) -> list[str]:
    ledger = (
        sa.select(sa.func.coalesce(sa.func.sum(point_ledger.c.delta), 0))
        .where(point_ledger.c.member_id == members.c.id)
        .scalar_subquery()
    )
    rows = conn.execute(sa.select(members.c.id, members.c.points, ledger)).all()
    return [
        f"member {mid}: balance {points} != ledger {total}"
        for mid, points, total in rows
        if points != total or points < 0
    ]


def payments_for_order(conn: sa.Connection, order_id: int) -> int:
    return cast(  # COUNT(*) always returns a row
        int,
        conn.scalar(
            sa.select(sa.func.count()).select_from(payments).where(payments.c.order_id == order_id)
        ),
    )
