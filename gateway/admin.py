"""The admin API: read the route table, replace it atomically, run ramps, read shadow results
and the live status the console polls. Every call needs the admin bearer token."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from gateway.ramp import parse_plan
from gateway.ramp_runner import RampRunning
from gateway.registry import VersionConflict
from gateway.runtime import Gateway
from libs.bearer import Actor
from libs.response import ApiError, ok
from libs.routing import InvalidRouteTable, RouteTable


def current_gateway(request: Request) -> Gateway:
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(current_gateway)]


def admin_router(ramp_defaults: dict[str, Any]) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"])

    @router.get("/routes")
    async def read_routes(_: Actor, gateway: GatewayDep):
        return ok(routes_view(gateway))

    @router.put("/routes")
    async def replace_routes(request: Request, actor: Actor, gateway: GatewayDep):
        data = await _json(request)
        try:
            proposed = gateway.registry.parse(data)
            _refuse_changes_under_ramps(gateway, proposed)
            reason = data.get("reason", "") if isinstance(data, dict) else ""
            gateway.registry.replace(data, actor=actor, reason=str(reason))
        except InvalidRouteTable as exc:
            raise ApiError(
                422, "INVALID_ROUTE_TABLE", "The route table was refused.", exc.details
            ) from exc
        except VersionConflict as exc:
            raise ApiError(
                409, "VERSION_CONFLICT", str(exc), [{"current_version": exc.current}]
            ) from exc
        return ok(routes_view(gateway))

    @router.get("/changes")
    async def read_changes(_: Actor, gateway: GatewayDep):
        return ok({"changes": list(reversed(gateway.registry.changes))})

    @router.post("/ramps", status_code=202)
    async def start_ramp(request: Request, actor: Actor, gateway: GatewayDep):
        data = await _json(request)
        name = data.get("route") if isinstance(data, dict) else None
        route = gateway.registry.table.get(name) if isinstance(name, str) else None
        try:
            plan = parse_plan(data, route, ramp_defaults)
            ramp = gateway.ramps.start(plan, actor)
        except InvalidRouteTable as exc:
            raise ApiError(422, "INVALID_RAMP", "The ramp was refused.", exc.details) from exc
        except RampRunning as exc:
            raise ApiError(409, "RAMP_RUNNING", str(exc)) from exc
        return ok(ramp, status=202)

    @router.get("/ramps")
    async def read_ramps(_: Actor, gateway: GatewayDep):
        return ok(gateway.ramps.dump())

    @router.get("/ramps/{route}")
    async def read_ramp(route: str, _: Actor, gateway: GatewayDep):
        ramp = gateway.ramps.ramps.get(route)
        if ramp is None:
            raise ApiError(404, "NO_RAMP", f"No ramp has run on route '{route}'.")
        return ok(ramp)

    @router.post("/ramps/{route}/abort")
    async def abort_ramp(route: str, actor: Actor, gateway: GatewayDep):
        ramp = await gateway.ramps.abort(route, actor)
        if ramp is None:
            raise ApiError(409, "NO_RUNNING_RAMP", f"No ramp is running on route '{route}'.")
        return ok(ramp)

    @router.get("/shadow")
    async def read_shadow(_: Actor, gateway: GatewayDep):
        return ok(gateway.shadow.status())

    @router.get("/migration")
    async def read_migration(_: Actor, request: Request):
        """The whole migration: stage, extractions, events, read model, processes
        (gateway/migration.py); a process that does not answer shows as down."""
        return ok(await request.app.state.migration.snapshot())

    @router.get("/status")
    async def read_status(_: Actor, gateway: GatewayDep):
        return ok(
            {
                **routes_view(gateway),
                "live": gateway.live(),
                "ramps": gateway.ramps.dump(),
                "shadow": gateway.shadow.status(),
                "changes": list(reversed(gateway.registry.changes))[:20],
            }
        )

    return router


def routes_view(gateway: Gateway) -> dict[str, Any]:
    table = gateway.registry.table
    return {
        "version": gateway.registry.version,
        "backends": gateway.upstreams.urls,
        "routes": [{**r.to_dict(), "share_percent": r.share()} for r in table.routes],
    }


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise ApiError(400, "INVALID_JSON", "The request body is not valid JSON.") from exc


def _refuse_changes_under_ramps(gateway: Gateway, proposed: RouteTable) -> None:
    """A ramp owns its route's weights while it runs; a hand edit would fight it."""
    for name, ramp in gateway.ramps.ramps.items():
        if ramp["state"] != "running":
            continue
        current, new = gateway.registry.table.get(name), proposed.get(name)
        if current is None or new is None or current.weights != new.weights:
            raise ApiError(
                409,
                "RAMP_RUNNING",
                f"A ramp is running on route '{name}'; abort it before changing its weights.",
            )
