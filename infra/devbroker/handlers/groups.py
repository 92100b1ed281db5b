"""JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups, ListGroups."""

from __future__ import annotations

from typing import Any

from infra.devbroker.context import RequestContext


async def join_group(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    normalised = {
        "group_id": request["group_id"],
        "member_id": request["member_id"],
        "group_instance_id": request.get("group_instance_id"),
        "protocol_type": request["protocol_type"],
        "protocols": request["protocols"],
        "session_timeout_ms": request["session_timeout"],
        "rebalance_timeout_ms": request.get("rebalance_timeout", -1),
        # JoinGroup v4+ clients understand MEMBER_ID_REQUIRED (KIP-394).
        "require_known_member_id": ctx.api_version >= 4,
    }
    result = await ctx.broker.groups.join(normalised, ctx.client_id, ctx.client_host)
    return {"generation_id": -1, "protocol_name": "", "leader": "", "members": [], **result}


async def sync_group(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    result = await ctx.broker.groups.sync(request)
    return {"error_code": result["error_code"], "assignment": result.get("assignment", b"")}


async def heartbeat(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    return {"error_code": ctx.broker.groups.heartbeat(request)}


async def leave_group(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    return {"error_code": ctx.broker.groups.leave(request["group_id"], request["member_id"])}


async def describe_groups(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    return {"groups": [_describe(ctx, group_id) for group_id in request["groups"]]}


def _describe(ctx: RequestContext, group_id: str) -> dict[str, Any]:
    group = ctx.broker.groups.groups.get(group_id)
    if group is None:
        # Kafka describes an unknown group as Dead rather than failing.
        state = "Empty" if group_id in ctx.broker.offsets.groups() else "Dead"
        return {
            "group_id": group_id,
            "group_state": state,
            "protocol_type": "",
            "protocol_data": "",
            "members": [],
        }
    members = [
        {
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "client_host": m.client_host,
            "member_metadata": m.metadata_for(group.protocol_name or ""),
            "member_assignment": m.assignment,
        }
        for m in group.members.values()
    ]
    return {
        "group_id": group_id,
        "group_state": group.state.value,
        "protocol_type": group.protocol_type,
        "protocol_data": group.protocol_name or "",
        "members": members,
    }


async def list_groups(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    live = ctx.broker.groups.groups
    listed = [{"group_id": g.group_id, "protocol_type": g.protocol_type} for g in live.values()]
    # Groups known only by their committed offsets are listed too, as Kafka does.
    listed += [
        {"group_id": group_id, "protocol_type": ""}
        for group_id in ctx.broker.offsets.groups()
        if group_id not in live
    ]
    return {"groups": listed}
