"""The payment API, path for path and envelope for envelope the monolith's, Idempotency-Key
semantics included: a retried payment answers its first result (Idempotency-Replayed: true)
and charges once, on whichever side the gateway sends it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from libs.bearer import CurrentMember
from libs.idempotency import Outcome
from libs.response import ok
from services.payment.entrypoints.schemas import (
    IdempotencyKey,
    Limit,
    Offset,
    OrderIdQuery,
    PaymentCreate,
    PaymentIdPath,
)
from services.payment.service_layer import commands
from services.payment.service_layer.payments import Payments

router = APIRouter(prefix="/api/payments", tags=["payments"])


def _payments(request: Request) -> Payments:
    return request.app.state.payments


PaymentsDep = Annotated[Payments, Depends(_payments)]


def _answer(request: Request, outcome: Outcome):
    # The payment's event committed with it: wake the relay rather than wait for its poll.
    request.app.state.relay.notify()
    headers = {"Idempotency-Replayed": "true"} if outcome.replayed else None
    return ok(outcome.body, status=outcome.status, headers=headers)


@router.post("", status_code=201)
def pay(
    request: Request,
    body: PaymentCreate,
    member_id: CurrentMember,
    payments: PaymentsDep,
    key: IdempotencyKey = None,
):
    cmd = commands.Pay(member_id, body.order_id, body.method, key)
    return _answer(request, payments.pay(cmd))


@router.get("")
def my_payments(
    member_id: CurrentMember,
    payments: PaymentsDep,
    order_id: OrderIdQuery = None,
    limit: Limit = 20,
    offset: Offset = 0,
):
    """The caller's payments, newest first; with `order_id`, that order's (at most one): how
    a page that shows an order finds its payment, since orders do not store it."""
    return ok(payments.find(member_id, order_id=order_id, limit=limit, offset=offset))


@router.get("/{payment_id}")
def get_payment(payment_id: PaymentIdPath, member_id: CurrentMember, payments: PaymentsDep):
    return ok(payments.get(payment_id, member_id))


@router.post("/{payment_id}/refund")
def refund(
    request: Request,
    payment_id: PaymentIdPath,
    member_id: CurrentMember,
    payments: PaymentsDep,
    key: IdempotencyKey = None,
):
    return _answer(request, payments.refund(commands.Refund(member_id, payment_id, key)))
