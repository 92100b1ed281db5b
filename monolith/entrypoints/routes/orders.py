from __future__ import annotations

from fastapi import APIRouter, Depends

from libs.bearer import CurrentMember
from libs.response import ok
from monolith.domain.orders import LineRequest
from monolith.entrypoints.deps import IdempotencyKey, ReadUowDep, UowDep, order_feature
from monolith.entrypoints.schemas import Limit, Offset, OrderCreate, OrderIdPath
from monolith.service_layer import commands
from monolith.service_layer import orders as handlers

# Retired as orders move to the order service (features.py).
router = APIRouter(prefix="/api/orders", tags=["orders"], dependencies=[Depends(order_feature)])


@router.post("", status_code=201)
def place_order(
    body: OrderCreate, member_id: CurrentMember, uow: UowDep, key: IdempotencyKey = None
):
    """A retry with the same Idempotency-Key and lines answers the first placement again
    (Idempotency-Replayed: true) instead of placing a second order."""
    lines = [LineRequest(item.product_id, item.quantity) for item in body.items]
    outcome = handlers.place_order(commands.PlaceOrder(member_id, lines, key), uow)
    headers = {"Idempotency-Replayed": "true"} if outcome.replayed else None
    return ok(outcome.body, status=outcome.status, headers=headers)


@router.get("")
def my_orders(member_id: CurrentMember, uow: ReadUowDep, limit: Limit = 20, offset: Offset = 0):
    return ok(handlers.list_orders(member_id, uow, limit, offset))


@router.get("/{order_id}")
def get_order(order_id: OrderIdPath, member_id: CurrentMember, uow: ReadUowDep):
    return ok(handlers.get_order(order_id, member_id, uow))


@router.post("/{order_id}/cancel")
def cancel_order(order_id: OrderIdPath, member_id: CurrentMember, uow: UowDep):
    return ok(handlers.cancel_order(commands.CancelOrder(member_id, order_id), uow))
