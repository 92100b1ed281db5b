"""The gRPC face of the member service: core lookups for other services' hot paths. It runs
the same handlers as the HTTP API, through the same data mode."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from libs.extraction import ExtractionData
from libs.rpc import start_grpc_server
from protos.shop.member.v1 import member_pb2, member_pb2_grpc
from services.member.domain.errors import Conflict, Invalid, NotFound
from services.member.service_layer import commands, points
from services.member.service_layer import members as handlers

# Domain errors as gRPC status codes; anything else is INTERNAL, grpcio's default.
STATUS = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    Invalid: grpc.StatusCode.INVALID_ARGUMENT,
}


class MemberServicer(member_pb2_grpc.MemberServiceServicer):
    def __init__(self, data: ExtractionData, announced: Callable[[], None]) -> None:
        """`announced`: called after a change committed, whose event waits in an outbox."""
        self.data, self.announced = data, announced

    async def GetMember(self, request, context: grpc.aio.ServicerContext):
        try:
            member = await asyncio.to_thread(handlers.profile, request.member_id, self.data)
        except NotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, exc.message)
        return to_message(member)

    async def SpendPoints(self, request, context: grpc.aio.ServicerContext):
        cmd = commands.SpendPoints(
            request.member_id,
            request.amount,
            request.key,
            request.reason or points.SPEND,
            request.payment_id or None,
        )
        result = await self._run(context, points.spend, cmd)
        return member_pb2.SpendPointsResponse(**result)

    async def CancelSpend(self, request, context: grpc.aio.ServicerContext):
        cmd = commands.CancelSpend(request.member_id, request.key)
        result = await self._run(context, points.cancel, cmd)
        return member_pb2.CancelSpendResponse(**result)

    async def _run(self, context: grpc.aio.ServicerContext, handler, cmd) -> dict[str, Any]:
        try:
            result = await asyncio.to_thread(handler, cmd, self.data)
        except tuple(STATUS) as exc:
            await context.abort(STATUS[type(exc)], f"{exc.code}: {exc.message}")
            raise AssertionError("unreachable: context.abort() raises") from exc
        if result["applied"]:
            self.announced()
        return result


def to_message(member: dict[str, Any]) -> member_pb2.Member:
    times = {k: member[k].isoformat() for k in ("created_at", "updated_at")}
    fields = {k: member[k] for k in ("id", "email", "name", "points")}
    return member_pb2.Member(**fields, **times, phone=member["phone"])


async def start_grpc(
    data: ExtractionData, host: str, port: int, announced: Callable[[], None] = lambda: None
) -> grpc.aio.Server:
    """`announced`: wakes the relay after a points change (its event is in the outbox)."""
    servicer = MemberServicer(data, announced)
    return await start_grpc_server(
        lambda server: member_pb2_grpc.add_MemberServiceServicer_to_server(servicer, server),
        host,
        port,
    )
