"""The commerce services' gRPC lists over a real socket: a member's recent orders (ListOrders)
and the payments of some orders (ListPayments), what a page composed from the owners asks
(read_model/fanout.py), answering what the HTTP APIs answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from infra.processes import grpc_target
from protos.shop.order.v1 import order_pb2, order_pb2_grpc
from protos.shop.payment.v1 import payment_pb2, payment_pb2_grpc
from tests.services.commerce.conftest import auth

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@contextmanager
def channel(service: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_target(service)) as opened:
        yield opened


def test_list_orders_answers_the_members_orders_as_the_http_api_lists_them(commerce):
    with commerce("single") as shop:
        member_id, token = shop.member()
        _, other = shop.member()
        placed = [shop.place(token, shop.product()["id"]).json()["data"] for _ in range(3)]
        shop.place(other, shop.product()["id"])
        listed = shop.orders.get("/api/orders", headers=auth(token)).json()["data"]["items"]

        with channel("order-service") as opened:
            stub = order_pb2_grpc.OrderServiceStub(opened)
            answer = stub.ListOrders(order_pb2.ListOrdersRequest(member_id=member_id), timeout=5)
            two = stub.ListOrders(order_pb2.ListOrdersRequest(member_id=member_id, limit=2))
            with pytest.raises(grpc.RpcError) as refused:
                stub.ListOrders(order_pb2.ListOrdersRequest(member_id=member_id, limit=101))

        assert [o.id for o in answer.orders] == [o["id"] for o in reversed(placed)]
        for message, order in zip(answer.orders, listed, strict=True):
            assert (message.member_id, message.status, message.total) == (
                member_id,
                order["status"],
                order["total"],
            )
            assert (message.created_at, message.updated_at) == (
                order["created_at"],
                order["updated_at"],
            )
            lines = [(li.product_id, li.quantity, li.unit_price) for li in message.lines]
            assert lines == [
                (li["product_id"], li["quantity"], li["unit_price"]) for li in order["lines"]
            ]
        assert [o.id for o in two.orders] == [placed[2]["id"], placed[1]["id"]]
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_list_payments_answers_the_payments_of_the_named_orders_of_that_member_only(commerce):
    with commerce("single") as shop:
        member_id, token = shop.member()
        other_id, _ = shop.member()
        orders = [shop.place(token, shop.product()["id"]).json()["data"] for _ in range(3)]
        payments = [shop.pay(token, order["id"]).json()["data"] for order in orders[:2]]

        with channel("payment-service") as opened:
            stub = payment_pb2_grpc.PaymentServiceStub(opened)

            def ask(member: int, order_ids: list[int]) -> payment_pb2.ListPaymentsResponse:
                request = payment_pb2.ListPaymentsRequest(member_id=member, order_ids=order_ids)
                return stub.ListPayments(request, timeout=5)

            named = ask(member_id, [order["id"] for order in orders])
            one = ask(member_id, [orders[0]["id"]])
            nothing = ask(member_id, [])
            not_theirs = ask(other_id, [order["id"] for order in orders])
            with pytest.raises(grpc.RpcError) as refused:
                ask(member_id, list(range(1, 102)))

        assert [p.id for p in named.payments] == [payments[1]["id"], payments[0]["id"]]
        message = one.payments[0]
        fields = ("id", "order_id", "member_id", "amount", "method", "status", "points_earned")
        assert {f: getattr(message, f) for f in fields} == {f: payments[0][f] for f in fields}
        assert message.created_at == payments[0]["created_at"]
        assert list(nothing.payments) == [] and list(not_theirs.payments) == []
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
