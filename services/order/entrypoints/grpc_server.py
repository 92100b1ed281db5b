"""The gRPC face of the order service: the order a payment is for, on the payment service's
hot path, and a member's recent orders, for a page composed from the owners
(read_model/fanout.py). It runs the same handlers as the HTTP API, through the same data
mode."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from libs.errors import NotFound
from libs.extraction import ExtractionData
from libs.rpc import start_grpc_server
from protos.shop.order.v1 import order_pb2, order_pb2_grpc
from services.order.service_layer import orders as handlers

DEFAULT_LIMIT, MAX_LIMIT = 20, 100  # GET /api/orders' default and bound


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, data: ExtractionData) -> None:
        self.data = data

    async def GetOrder(self, request, context: grpc.aio.ServicerContext):
        try:
            order = await asyncio.to_thread(
                handlers.get_order, request.order_id, request.member_id, self.data
            )
        except NotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{exc.code}: {exc.message}")
        return to_message(order)

    async def ListOrders(self, request, context: grpc.aio.ServicerContext):
        limit = request.limit or DEFAULT_LIMIT
        if not 1 <= limit <= MAX_LIMIT:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"INVALID_LIMIT: limit must be 1 to {MAX_LIMIT}, not {request.limit}.",
            )
        listed = await asyncio.to_thread(
            handlers.list_orders, request.member_id, self.data, limit, 0
        )
        return order_pb2.ListOrdersResponse(orders=[to_message(o) for o in listed["items"]])


def to_message(order: dict[str, Any]) -> order_pb2.Order:
    times = {k: order[k].isoformat() for k in ("created_at", "updated_at")}
    lines = [order_pb2.OrderLine(**line) for line in order["lines"]]
    fields = {k: order[k] for k in ("id", "member_id", "status", "total")}
    return order_pb2.Order(**fields, **times, lines=lines)


async def start_grpc(data: ExtractionData, host: str, port: int) -> grpc.aio.Server:
    servicer = OrderServicer(data)
    return await start_grpc_server(
        lambda server: order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server),
        host,
        port,
    )
