"""A client of the order service's gRPC API for other services (the payment service). Every
call carries an explicit deadline."""

from __future__ import annotations

import grpc

from protos.shop.order.v1 import order_pb2, order_pb2_grpc
from services.member.client import CHANNEL_OPTIONS


class BlockingOrderClient:
    """For callers that run in threads. One channel, shared by every thread, until `close()`."""

    def __init__(self, target: str, *, timeout: float) -> None:
        self.target, self.timeout = target, timeout
        self._channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._stub = order_pb2_grpc.OrderServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def get_order(
        self, order_id: int, member_id: int, *, timeout: float | None = None
    ) -> order_pb2.Order:
        request = order_pb2.GetOrderRequest(order_id=order_id, member_id=member_id)
        return self._stub.GetOrder(request, timeout=timeout or self.timeout, wait_for_ready=True)
