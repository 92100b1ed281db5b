"""The views composed by fan-out: what a page costs before the read model exists.

Without views built from events (read_model/views.py), a page is stitched together on every
read from the answers of the data's owners: the member, the member's orders, and the payment
of each order that has one. This module is that composition, in the views' own shapes, field
for field, so it is the baseline the read model replaces: the monolith serves `/api/views/...`
with it until stage 9 (monolith/entrypoints/routes/views.py), and the read-model benchmark
measures a view against it, over HTTP and over gRPC.

    my page, HTTP   GET /api/members/me  +  GET /api/orders?limit=20       (together)
                    then GET /api/payments?order_id=N per PAID or REFUNDED order (together)
    order, HTTP     GET /api/orders/{id}  +  GET /api/payments?order_id={id}  (together)
    my page, gRPC   GetMember  +  ListOrders                                (together)
                    then ListPayments of the PAID and REFUNDED orders
    order, gRPC     GetOrder  +  ListPayments of that order                 (together)

Fan-out cannot know the event history, so an order's timeline is rebuilt from what the owners
store: the order's created_at (OrderPlaced), its payment's created_at (PaymentCompleted), a
refunded payment's updated_at (PaymentRefunded), and the order's updated_at for its latest
status (OrderPaid, OrderCancelled or OrderRefunded). A refunded order was paid too, at a time
no owner keeps: its OrderPaid is placed at its payment's capture, when the order became PAID.

An owner's refusal passes through as the same status and code (a 404 order stays a 404, a 401
token a 401; the gateway's 504 a 504); an owner that is down or answers a failure of its own
becomes 503 VIEW_SOURCE_UNAVAILABLE, naming the call. Every call gets what is left of the
current request's budget (libs/timeouts): over HTTP it passes a little less on as
X-Shop-Deadline-Ms and waits for the whole of it, so the owner's own 504 arrives first."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import grpc
import httpx

from libs.bearer import BEARER
from libs.response import ApiError, BadEnvelope, ServiceError, parse_envelope
from libs.timeouts import DEADLINE_HEADER, outbound_headers, remaining_seconds
from protos.shop.member.v1 import member_pb2, member_pb2_grpc
from protos.shop.order.v1 import order_pb2, order_pb2_grpc
from protos.shop.payment.v1 import payment_pb2, payment_pb2_grpc
from read_model.views import MEMBER_FIELDS, PAYMENT_FIELDS, RECENT_ORDERS
from services.member.client import CHANNEL_OPTIONS
from services.member.debits import call_deadline
from services.order.domain.orders import CANCELLED, PAID, PLACED, REFUNDED
from services.order.events import EVENTS as ORDER_EVENTS
from services.payment.domain.payments import CAPTURED
from services.payment.domain.payments import REFUNDED as PAYMENT_REFUNDED

T = TypeVar("T")
# The orders that have a payment: only theirs are looked up.
WITH_PAYMENT = (PAID, REFUNDED)
LINE_FIELDS = ("product_id", "quantity", "unit_price")
# Of what is left of the request's budget, the part an owner is not given: the gateway waits
# 0.25 s past the deadline it passes on (libs/routing/upstream.py) before its own 504.
HTTP_MARGIN_SECONDS = 0.3
GRPC_DEADLINE_SECONDS = 2.0  # a call's deadline when no request's budget is shorter
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


# --- over HTTP: the owners' public APIs, as a web client would call them -------------------


async def compose_my_page_http(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """The member's my page from GET /api/members/me, /api/orders and /api/payments."""
    member, orders = await _together(
        _get(client, token, "/api/members/me"),
        _get(client, token, "/api/orders", {"limit": RECENT_ORDERS}),
    )
    items = orders["items"]
    paid = [order["id"] for order in items if order["status"] in WITH_PAYMENT]
    found = await _together(*(_payment_of(client, token, order_id) for order_id in paid))
    return my_page(member, items, dict(zip(paid, found, strict=True)))


async def compose_order_http(
    client: httpx.AsyncClient, token: str, order_id: int
) -> dict[str, Any]:
    """One order's detail from GET /api/orders/{id} and its payment from /api/payments."""
    order, payment = await _together(
        _get(client, token, f"/api/orders/{order_id}"), _payment_of(client, token, order_id)
    )
    return order_detail(order, payment)


async def _payment_of(
    client: httpx.AsyncClient, token: str, order_id: int
) -> dict[str, Any] | None:
    listed = await _get(client, token, "/api/payments", {"order_id": order_id})
    return listed["items"][0] if listed["items"] else None


async def _get(
    client: httpx.AsyncClient, token: str, path: str, params: dict[str, Any] | None = None
) -> Any:
    call = f"GET {path}"
    headers, timeout = _budget(client)
    headers["Authorization"] = f"Bearer {token}"
    try:
        response = await client.get(path, params=params, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise ApiError(
            504,
            "VIEW_SOURCE_TIMEOUT",
            f"{call} did not answer within the request's time.",
            [{"call": call}],
        ) from exc
    except httpx.HTTPError as exc:
        raise _unavailable(call, f"{type(exc).__name__}: {exc}") from exc
    try:
        return parse_envelope(response)
    except ServiceError as exc:
        raise _passed_on(call, exc) from exc


def _budget(client: httpx.AsyncClient) -> tuple[dict[str, str], Any]:
    """The request id and the deadline passed on, and the call's timeout: what is left of
    the current request's budget, or the client's own timeouts outside a request."""
    headers = outbound_headers()
    left = remaining_seconds()
    if left is None:
        return headers, httpx.USE_CLIENT_DEFAULT
    passed = left - min(HTTP_MARGIN_SECONDS, left / 2)
    headers[DEADLINE_HEADER] = str(max(int(passed * 1000), 1))
    own = client.timeout
    wait = max(left, 0.001)
    connect = min(own.connect, wait) if own.connect is not None else wait
    return headers, httpx.Timeout(connect=connect, read=wait, write=wait, pool=connect)


def _passed_on(call: str, exc: ServiceError) -> ApiError:
    """An owner's refusal, or the 503/504 it answered, as itself; its failure (a 500, the
    gateway's 502, an answer that is not an envelope) as VIEW_SOURCE_UNAVAILABLE."""
    refusal = 400 <= exc.status < 500 or exc.status in (503, 504)
    if refusal and not isinstance(exc, BadEnvelope):
        headers = BEARER if exc.status == 401 else None
        return ApiError(exc.status, exc.code, exc.message, exc.details, headers)
    return _unavailable(
        call,
        f"it answered {exc.status} {exc.code}",
        {"status": exc.status, "code": exc.code, "served_by": exc.served_by},
    )


def _unavailable(call: str, why: str, more: Mapping[str, Any] | None = None) -> ApiError:
    return ApiError(
        503,
        "VIEW_SOURCE_UNAVAILABLE",
        f"The page could not be composed: {call} failed ({why}).",
        [{"call": call, **(more or {})}],
    )


# --- over gRPC: the owners' core lookups ---------------------------------------------------


@dataclass(frozen=True)
class Channels:
    """One channel to each owner's gRPC server (grpc.aio: the composition runs in the event
    loop), and each call's deadline in seconds (shortened to what is left of the current
    request's budget); `open` makes them, `close` closes them."""

    member: grpc.aio.Channel
    order: grpc.aio.Channel
    payment: grpc.aio.Channel
    deadline: float = GRPC_DEADLINE_SECONDS

    @classmethod
    def open(
        cls, member: str, order: str, payment: str, deadline: float = GRPC_DEADLINE_SECONDS
    ) -> Channels:
        member_channel, order_channel, payment_channel = (
            grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
            for target in (member, order, payment)
        )
        return cls(member_channel, order_channel, payment_channel, deadline)

    def timeout(self) -> float:
        return call_deadline(self.deadline)

    async def close(self) -> None:
        for channel in (self.member, self.order, self.payment):
            await channel.close()


async def compose_my_page_grpc(channels: Channels, member_id: int) -> dict[str, Any]:
    """The member's my page from GetMember, ListOrders and ListPayments."""
    members = member_pb2_grpc.MemberServiceStub(channels.member)
    orders = order_pb2_grpc.OrderServiceStub(channels.order)
    member, listed = await _together(
        _rpc(
            "GetMember",
            members.GetMember(
                member_pb2.GetMemberRequest(member_id=member_id), timeout=channels.timeout()
            ),
            "MEMBER_NOT_FOUND",
        ),
        _rpc(
            "ListOrders",
            orders.ListOrders(
                order_pb2.ListOrdersRequest(member_id=member_id, limit=RECENT_ORDERS),
                timeout=channels.timeout(),
            ),
        ),
    )
    items = [_order_dict(order) for order in listed.orders]
    paid = [order["id"] for order in items if order["status"] in WITH_PAYMENT]
    payments = await _payments_grpc(channels, member_id, paid)
    return my_page(_member_dict(member), items, {p["order_id"]: p for p in payments})


async def compose_order_grpc(channels: Channels, member_id: int, order_id: int) -> dict[str, Any]:
    """One order's detail from GetOrder and ListPayments of that order."""
    orders = order_pb2_grpc.OrderServiceStub(channels.order)
    request = order_pb2.GetOrderRequest(order_id=order_id, member_id=member_id)
    order, payments = await _together(
        _rpc("GetOrder", orders.GetOrder(request, timeout=channels.timeout()), "ORDER_NOT_FOUND"),
        _payments_grpc(channels, member_id, [order_id]),
    )
    return order_detail(_order_dict(order), payments[0] if payments else None)


async def _payments_grpc(
    channels: Channels, member_id: int, order_ids: list[int]
) -> list[dict[str, Any]]:
    if not order_ids:
        return []
    stub = payment_pb2_grpc.PaymentServiceStub(channels.payment)
    request = payment_pb2.ListPaymentsRequest(member_id=member_id, order_ids=order_ids)
    listed = await _rpc("ListPayments", stub.ListPayments(request, timeout=channels.timeout()))
    return [_payment_dict(payment) for payment in listed.payments]


async def _rpc(name: str, call: Awaitable[T], not_found: str = "NOT_FOUND") -> T:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        code, details = exc.code(), exc.details() or ""
        if code == grpc.StatusCode.NOT_FOUND:  # "CODE: message", or the message alone
            named, _, message = details.partition(": ")
            if message and _CODE.match(named):
                raise ApiError(404, named, message) from exc
            raise ApiError(404, not_found, details) from exc
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise ApiError(
                504,
                "VIEW_SOURCE_TIMEOUT",
                f"{name} did not answer within the request's time.",
                [{"call": name}],
            ) from exc
        raise _unavailable(name, f"{code.name}: {details}") from exc


def _member_dict(member: member_pb2.Member) -> dict[str, Any]:
    phone = member.phone if member.HasField("phone") else None
    fields = ("id", "email", "name", "points")
    return {name: getattr(member, name) for name in fields} | {"phone": phone}


def _order_dict(order: order_pb2.Order) -> dict[str, Any]:
    fields = ("id", "member_id", "status", "total", "created_at", "updated_at")
    lines = [{name: getattr(line, name) for name in LINE_FIELDS} for line in order.lines]
    return {name: getattr(order, name) for name in fields} | {"lines": lines}


def _payment_dict(payment: payment_pb2.Payment) -> dict[str, Any]:
    fields = ("id", "order_id", *PAYMENT_FIELDS, "created_at", "updated_at")
    return {name: getattr(payment, name) for name in fields}


# --- the views' shapes, from the owners' answers -------------------------------------------


def my_page(
    member: Mapping[str, Any],
    orders: Iterable[Mapping[str, Any]],
    payments: Mapping[int, Mapping[str, Any] | None],
) -> dict[str, Any]:
    """The my-page view (read_model/views.py) from the member, its most recent orders and,
    by order id, their payments."""
    entries = [
        {
            "id": order["id"],
            "status": order["status"],
            "total": order["total"],
            "placed_at": order["created_at"],
            "payment": _payment(payments.get(order["id"])),
        }
        for order in sorted(orders, key=lambda o: o["id"], reverse=True)[:RECENT_ORDERS]
    ]
    return {
        "member": {"id": member["id"]} | {name: member[name] for name in MEMBER_FIELDS},
        "points": member["points"],
        "orders": entries,
    }


def order_detail(order: Mapping[str, Any], payment: Mapping[str, Any] | None) -> dict[str, Any]:
    """The order view (read_model/views.py) from the order and its payment, if any."""
    return {
        "id": order["id"],
        "member_id": order["member_id"],
        "status": order["status"],
        "total": order["total"],
        "placed_at": order["created_at"],
        "lines": [{name: line[name] for name in LINE_FIELDS} for line in order["lines"]],
        "payment": _payment(payment),
        "timeline": timeline(order, payment),
    }


def timeline(order: Mapping[str, Any], payment: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The order's and its payment's events, as far as the owners' timestamps tell them, in
    the order they happened (entries of one instant in the order they were caused)."""
    entries = [("OrderPlaced", PLACED, order["created_at"])]
    if payment is not None:
        entries.append(("PaymentCompleted", CAPTURED, payment["created_at"]))
        if order["status"] == REFUNDED:  # paid first, when its payment was captured
            entries.append((ORDER_EVENTS[PAID][0], PAID, payment["created_at"]))
        if payment["status"] == PAYMENT_REFUNDED:
            entries.append(("PaymentRefunded", PAYMENT_REFUNDED, payment["updated_at"]))
    if order["status"] in (PAID, CANCELLED, REFUNDED):
        kind = ORDER_EVENTS[order["status"]][0]
        entries.append((kind, order["status"], order["updated_at"]))
    entries.sort(key=lambda entry: datetime.fromisoformat(entry[2]))
    return [{"type": kind, "status": status, "at": at} for kind, status, at in entries]


def _payment(payment: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if payment is None:
        return None
    return {"id": payment["id"]} | {name: payment[name] for name in PAYMENT_FIELDS}


async def _together(*calls: Awaitable[Any]) -> list[Any]:
    """The calls' answers, made concurrently; the first to fail is raised, and the others are
    cancelled (their answers would not be used)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
