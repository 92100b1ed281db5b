"""The order API, path for path and envelope for envelope the monolith's, so the gateway can
send a member's request to either side during the ramp."""

from __future__ import annotations

from fastapi import APIRouter, Request

from libs.bearer import CurrentMember
from libs.response import ok
from services.order.domain.orders import LineRequest
from services.order.entrypoints.deps import CatalogueDep, DataDep
from services.order.entrypoints.schemas import (
    IdempotencyKey,
    Limit,
    Offset,
    OrderCreate,
    OrderIdPath,
)
from services.order.service_layer import commands
from services.order.service_layer import orders as handlers

router = APIRouter(prefix="/api/orders", tags=["orders"])


def _announce(request: Request) -> None:
    # The order's event committed with it: wake the relay rather than wait for its poll.
    request.app.state.relay.notify()


@router.post("", status_code=201)
def place_order(
    request: Request,
    body: OrderCreate,
    member_id: CurrentMember,
    data: DataDep,
    catalogue: CatalogueDep,
    key: IdempotencyKey = None,
):
    """A retry with the same Idempotency-Key and lines answers the first placement again
    (Idempotency-Replayed: true) instead of placing a second order."""
    lines = [LineRequest(item.product_id, item.quantity) for item in body.items]
    outcome = handlers.place_order(commands.PlaceOrder(member_id, lines, key), data, catalogue)
    if outcome.replayed:
        return ok(outcome.body, status=outcome.status, headers={"Idempotency-Replayed": "true"})
    _announce(request)
    return ok(outcome.body, status=outcome.status)


@router.get("")
def my_orders(member_id: CurrentMember, data: DataDep, limit: Limit = 20, offset: Offset = 0):
    return ok(handlers.list_orders(member_id, data, limit, offset))


@router.get("/{order_id}")
def get_order(order_id: OrderIdPath, member_id: CurrentMember, data: DataDep):
    return ok(handlers.get_order(order_id, member_id, data))


@router.post("/{order_id}/cancel")
def cancel_order(request: Request, order_id: OrderIdPath, member_id: CurrentMember, data: DataDep):
    order = handlers.cancel_order(commands.CancelOrder(member_id, order_id), data)
    _announce(request)
    return ok(order)
