"""The edge: every request whose path matches a route is proxied to the backend its member is
assigned to; anything else (admin API, console, health, metrics, unknown paths) falls through
to the gateway's own FastAPI app.

Proxied traffic skips the FastAPI middleware stack on purpose: it is the hot path, and the
answer is the backend's (its status, headers and X-Served-By), not the gateway's. The gateway
adds X-Routed-To and X-Request-Id, passes the deadline on, and answers its own failures (502,
504) as envelopes with X-Served-By: gateway.

The path is normalised once, here, before anything looks at it (libs/routing/table.py
normalise_path): the route is matched on that path, the backend gets exactly that path, and
the gateway's own app sees it too. A path that cannot be normalised without guessing is a 400
AMBIGUOUS_PATH envelope. Otherwise `/api/products/%2e%2e/%2e%2e/admin/features` would match the
products route and then be resolved by the backend to its admin API."""

from __future__ import annotations

import logging
import os
import re
import time
from urllib.parse import quote, unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.runtime import Gateway
from gateway.shadow import Mirror
from libs import context
from libs.response.server import error_response
from libs.routing import Route, sticky_key
from libs.routing.sticky import session_cookie
from libs.routing.table import AmbiguousPath, normalise_path
from libs.routing.upstream import BodyRefused, BrokenStream, CallerGone, Outcome, read_body
from libs.timeouts import CallTimeouts
from libs.timeouts.deadline import parse_budget_ms

log = logging.getLogger("shop.gateway.proxy")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_WANTED = frozenset({b"authorization", b"cookie", b"x-request-id", b"x-shop-deadline-ms"})


class EdgeProxy:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway: Gateway | None = getattr(scope["app"].state, "gateway", None)
        if scope["type"] != "http" or gateway is None:
            await self.app(scope, receive, send)
            return
        try:
            scope = normalised(scope)
        except AmbiguousPath as exc:
            await refuse_path(scope, receive, send, str(exc))
            return
        route = gateway.registry.table.match(scope["raw_path"].decode("ascii"), scope["method"])
        if route is None:
            await self.app(scope, receive, send)
            return
        await proxy(gateway, route, scope, receive, send)


def normalised(scope: Scope) -> Scope:
    """`scope` with its path normalised: `raw_path` the form matched and forwarded, `path` that
    form decoded, as a backend's router will read it."""
    raw = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
    path = normalise_path(raw)
    return {**scope, "path": unquote(path), "raw_path": path.encode("ascii")}


async def refuse_path(scope: Scope, receive: Receive, send: Send, reason: str) -> None:
    rid = _request_id(scope)
    token = context.request_id.set(rid)
    try:
        headers = {"X-Served-By": "gateway", "X-Request-Id": rid}
        message = "The request path is ambiguous and is not routed: " + reason + "."
        await error_response(400, "AMBIGUOUS_PATH", message, [], headers)(scope, receive, send)
    finally:
        context.request_id.reset(token)


def _request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            rid = value.decode("latin-1")
            return rid if _SAFE_REQUEST_ID.match(rid) else os.urandom(16).hex()
    return os.urandom(16).hex()


async def proxy(gateway: Gateway, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
    wanted = {k: v.decode("latin-1") for k, v in scope["headers"] if k in _WANTED}
    rid = _request_id(scope)
    token = context.request_id.set(rid)
    try:
        key, new_sid = sticky_key(
            wanted.get(b"authorization"), wanted.get(b"cookie"), gateway.members
        )
        backend = route.choose(key)
        extra, own = _answer_headers(backend, rid, new_sid)
        mirror = gateway.shadow.wants(route, scope["method"], backend)
        timeouts = (
            CallTimeouts(route.timeouts.connect, route.timeouts.read)
            if route.timeouts
            else gateway.timeouts
        )
        budget = _budget(gateway.server_limit, wanted.get(b"x-shop-deadline-ms"))
        deadline = time.monotonic() + budget
        try:
            body = await read_body(
                scope,
                receive,
                limit=gateway.max_body_bytes,
                idle_seconds=gateway.body_idle_seconds,
                total_seconds=budget,
            )
        except CallerGone:
            return
        except BodyRefused as refused:
            answer = error_response(
                refused.status, refused.code, refused.message, refused.details, own
            )
            await answer(scope, receive, send)
            return
        # Out of rotation (draining, restarting): held until it is back, within the budget.
        await gateway.health.admit(backend, deadline - time.monotonic())

        async def back_in_rotation() -> bool:
            gateway.health.refused(backend)
            return await gateway.health.admit(backend, deadline - time.monotonic())

        try:
            outcome = await gateway.upstreams.forward(
                backend,
                scope,
                receive,
                send,
                timeouts=timeouts,
                request_id=rid,
                deadline_seconds=_passed_on(budget, timeouts.read),
                retries=gateway.retries,
                response_headers=extra,
                error_headers=own,
                capture_body=mirror,
                body=body,
                total_seconds=max(deadline - time.monotonic(), 0.001) + 0.25,
                on_refused=back_in_rotation,
            )
        except BrokenStream as broken:
            gateway.record(route.name, backend, Outcome(broken.status, 0.0, "broken"))
            raise
        gateway.record(route.name, backend, outcome)
        _after(gateway, route, backend, scope, outcome, mirror, rid)
    finally:
        context.request_id.reset(token)


def _answer_headers(
    backend: str, rid: str, new_sid: str | None
) -> tuple[list[tuple[bytes, bytes]], dict[str, str]]:
    """Headers added to the backend's answer, and the ones on the gateway's own errors."""
    extra = [(b"x-routed-to", backend.encode()), (b"x-request-id", rid.encode())]
    own = {"X-Served-By": "gateway", "X-Request-Id": rid, "X-Routed-To": backend}
    if new_sid:
        extra.append((b"set-cookie", session_cookie(new_sid).encode()))
        own["Set-Cookie"] = session_cookie(new_sid)
    return extra, own


def _after(
    gateway: Gateway,
    route: Route,
    backend: str,
    scope: Scope,
    outcome: Outcome,
    mirror: bool,
    rid: str,
) -> None:
    if outcome.failure:
        log.warning(
            "backend %s failed on %s %s: %s",
            backend,
            scope["method"],
            scope["path"],
            outcome.failure,
        )
    if mirror and outcome.body is not None:
        gateway.shadow.submit(
            Mirror(
                route=route,
                path=_target(scope),
                headers=_mirrored_headers(scope),
                primary_backend=backend,
                primary_status=outcome.status,
                primary_body=outcome.body,
                request_id=rid,
            )
        )


def _budget(limit: float, header: str | None) -> float:
    propagated = parse_budget_ms(header)
    return limit if propagated is None else min(limit, propagated)


def _passed_on(budget: float, read_timeout: float) -> float:
    """The deadline the backend gets: a little under our read timeout, so a slow backend's own
    504 envelope (naming what timed out) reaches us before we give up on it."""
    return min(budget, max(read_timeout - 0.1, read_timeout * 0.8))


def _target(scope: Scope) -> str:
    query = scope.get("query_string") or b""
    return scope["raw_path"].decode("ascii") + ("?" + query.decode("latin-1") if query else "")


def _mirrored_headers(scope: Scope) -> list[tuple[str, str]]:
    keep = (b"authorization", b"cookie", b"accept", b"accept-language")
    return [(k.decode(), v.decode("latin-1")) for k, v in scope["headers"] if k in keep]
