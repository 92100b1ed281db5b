from __future__ import annotations

from fastapi import APIRouter

from libs.response import ok
from monolith.entrypoints.deps import CurrentMember, IdempotencyKey, ReadUowDep, UowDep
from monolith.entrypoints.schemas import PaymentCreate, PaymentIdPath
from monolith.service_layer import commands
from monolith.service_layer import payments as handlers
from monolith.service_layer.idempotency import Outcome

router = APIRouter(prefix="/api/payments", tags=["payments"])


def _answer(outcome: Outcome):
    headers = {"Idempotency-Replayed": "true"} if outcome.replayed else None
    return ok(outcome.body, status=outcome.status, headers=headers)


@router.post("")
def pay(body: PaymentCreate, member_id: CurrentMember, uow: UowDep, key: IdempotencyKey = None):
    return _answer(handlers.pay(commands.Pay(member_id, body.order_id, body.method, key), uow))


@router.get("/{payment_id}")
def get_payment(payment_id: PaymentIdPath, member_id: CurrentMember, uow: ReadUowDep):
    return ok(handlers.get_payment(payment_id, member_id, uow))


@router.post("/{payment_id}/refund")
def refund(
    payment_id: PaymentIdPath, member_id: CurrentMember, uow: UowDep, key: IdempotencyKey = None
):
    return _answer(handlers.refund(commands.Refund(member_id, payment_id, key), uow))
