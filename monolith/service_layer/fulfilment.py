"""Fulfilment, the third subscriber of `shop.payments` (after the member service's points and,
from stage 5, the order service): a captured payment makes its order's shipment ready to
pack; a refund cancels it. The consumer group `monolith.fulfilment` applies each event once:
its inbox row and the shipment change commit together (libs/events), and the events of one
payment arrive in order (they share its key).

READY -> CANCELLED; a refund whose completion never arrived still records the cancelled
shipment, so a late completion cannot make it ready again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from libs.errors import NotFound
from libs.events.envelope import Event
from monolith.adapters.tables import shipments
from monolith.service_layer.unit_of_work import UnitOfWork

READY, CANCELLED = "READY", "CANCELLED"
GROUP = "monolith.fulfilment"


def handle_payment_event(conn: sa.Connection, event: Event) -> None:
    """Raises on an event it cannot apply (a field missing): the runner parks it."""
    if event.type not in ("PaymentCompleted", "PaymentRefunded"):
        return
    order_id, payment_id, member_id = (
        event.count(k) for k in ("order_id", "payment_id", "member_id")
    )
    now = datetime.now(UTC)
    found = conn.execute(
        sa.select(shipments.c.status).where(shipments.c.order_id == order_id).with_for_update()
    ).scalar()
    status = READY if event.type == "PaymentCompleted" else CANCELLED
    if found is None:
        conn.execute(
            shipments.insert().values(
                order_id=order_id,
                payment_id=payment_id,
                member_id=member_id,
                status=status,
                created_at=now,
                updated_at=now,
            )
        )
    elif found == READY and status == CANCELLED:
        conn.execute(
            shipments.update()
            .where(shipments.c.order_id == order_id)
            .values(status=CANCELLED, updated_at=now)
        )


def shipment_of(order_id: int, member_id: int, uow: UnitOfWork) -> dict[str, Any]:
    """The shipment of one of this member's orders. It names its member itself, so fulfilment
    reads no order (orders move to the order service); another member's is missing."""
    with uow:
        query = sa.select(shipments).where(
            shipments.c.order_id == order_id, shipments.c.member_id == member_id
        )
        found = uow.conn.execute(query).mappings().first()
    if found is None:
        raise NotFound(
            "SHIPMENT_NOT_FOUND",
            f"Order {order_id} has no shipment of yours: it is not paid, or its payment event "
            "is still on its way.",
        )
    return dict(found)
