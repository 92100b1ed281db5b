"""The gRPC face of the payment service: a payment by id, and the payments of some orders (for a
page composed from the owners, read_model/fanout.py), through the same data mode as the HTTP
API."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from libs.errors import NotFound
from libs.rpc import start_grpc_server
from protos.shop.payment.v1 import payment_pb2, payment_pb2_grpc
from services.payment.service_layer.payments import Payments

MAX_ORDERS = 100  # an order has at most one payment: this many orders, this many payments
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

    async def ListPayments(self, request, context: grpc.aio.ServicerContext):
        order_ids = list(request.order_ids)
        if len(order_ids) > MAX_ORDERS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"TOO_MANY_ORDERS: at most {MAX_ORDERS} orders, not {len(order_ids)}.",
            )
        if not order_ids:
            return payment_pb2.ListPaymentsResponse()
        listed = await asyncio.to_thread(
            self.payments.find, request.member_id, order_ids=order_ids, limit=len(order_ids)
        )
        return payment_pb2.ListPaymentsResponse(payments=[to_message(p) for p in listed["items"]])


def to_message(payment: dict[str, Any]) -> payment_pb2.Payment:
    return payment_pb2.Payment(**{name: payment[name] for name in FIELDS})


async def start_grpc(payments: Payments, host: str, port: int) -> grpc.aio.Server:
    servicer = PaymentServicer(payments)
    return await start_grpc_server(
        lambda server: payment_pb2_grpc.add_PaymentServiceServicer_to_server(servicer, server),
        host,
        port,
    )
