from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from libs.bearer import CurrentMember
from libs.response import ok
from monolith.entrypoints.deps import (
    IdempotencyKey,
    PointsDep,
    ReadUowDep,
    UowDep,
    payment_feature,
)
from monolith.entrypoints.schemas import MAX_ID, Limit, Offset, PaymentCreate, PaymentIdPath
from monolith.service_layer import commands
from monolith.service_layer import payments as handlers
from monolith.service_layer.idempotency import Outcome

OrderIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]

# Retired as payments move to the payment service (features.py); the same hold of the
# features tells a payment where its points go (deps._points).
router = APIRouter(
    prefix="/api/payments", tags=["payments"], dependencies=[Depends(payment_feature)]
)


def _announce(request: Request) -> None:
    # The payment's event committed with it: wake the relay rather than wait for its poll.
    request.app.state.relay.notify()


def _answer(outcome: Outcome):
    headers = {"Idempotency-Replayed": "true"} if outcome.replayed else None
    return ok(outcome.body, status=outcome.status, headers=headers)


@router.post("", status_code=201)
def pay(
    request: Request,
    body: PaymentCreate,
    member_id: CurrentMember,
    uow: UowDep,
    points: PointsDep,
    key: IdempotencyKey = None,
):
    cmd = commands.Pay(member_id, body.order_id, body.method, key)
    outcome = handlers.pay(cmd, uow, points)
    _announce(request)
    return _answer(outcome)


@router.get("")
def my_payments(
    member_id: CurrentMember,
    uow: ReadUowDep,
    order_id: OrderIdQuery = None,
    limit: Limit = 20,
    offset: Offset = 0,
):
    """The caller's payments, newest first; with `order_id`, that order's (at most one): how
    a page that shows an order finds its payment, since orders do not store it."""
    return ok(handlers.list_payments(member_id, uow, order_id, limit, offset))


@router.get("/{payment_id}")
def get_payment(payment_id: PaymentIdPath, member_id: CurrentMember, uow: ReadUowDep):
    return ok(handlers.get_payment(payment_id, member_id, uow))


@router.post("/{payment_id}/refund")
def refund(
    request: Request,
    payment_id: PaymentIdPath,
    member_id: CurrentMember,
    uow: UowDep,
    points: PointsDep,
    key: IdempotencyKey = None,
):
    outcome = handlers.refund(commands.Refund(member_id, payment_id, key), uow, points)
    _announce(request)
    return _answer(outcome)
