"""The gRPC face of the payment service: a payment by id, through the same data mode as the
HTTP API."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from libs.errors import NotFound
from libs.rpc import start_grpc_server
from protos.shop.payment.v1 import payment_pb2, payment_pb2_grpc
from services.payment.service_layer.payments import Payments

FIELDS = (
    "id", "order_id", "member_id", "amount", "method", "status", "points_earned",
    "points_spent", "created_at", "updated_at",
)  # fmt: skip


class PaymentServicer(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, payments: Payments) -> None:
        self.payments = payments

    async def GetPayment(self, request, context: grpc.aio.ServicerContext):
        try:
            payment = await asyncio.to_thread(
                self.payments.get, request.payment_id, request.member_id
            )
        except NotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{exc.code}: {exc.message}")
        return to_message(payment)


def to_message(payment: dict[str, Any]) -> payment_pb2.Payment:
    return payment_pb2.Payment(**{name: payment[name] for name in FIELDS})


async def start_grpc(payments: Payments, host: str, port: int) -> grpc.aio.Server:
    servicer = PaymentServicer(payments)
    return await start_grpc_server(
        lambda server: payment_pb2_grpc.add_PaymentServiceServicer_to_server(servicer, server),
        host,
        port,
    )
