"""Fulfilment's public read: a member's shipment by its order's id. Its own prefix, not under
/api/orders: the orders prefix moves to the order service, fulfilment stays here."""

from __future__ import annotations

from fastapi import APIRouter

from libs.bearer import CurrentMember
from libs.response import ok
from monolith.entrypoints.deps import ReadUowDep
from monolith.entrypoints.schemas import OrderIdPath
from monolith.service_layer import fulfilment

router = APIRouter(prefix="/api/shipments", tags=["shipments"])


@router.get("/{order_id}")
def get_shipment(order_id: OrderIdPath, member_id: CurrentMember, uow: ReadUowDep):
    """Made by the order's PaymentCompleted event, cancelled by its PaymentRefunded."""
    return ok(fulfilment.shipment_of(order_id, member_id, uow))
