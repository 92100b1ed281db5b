"""Routing inside the monolith, the talk's literal approach: the existing service forwards a
configured share of a route to the new service and handles the rest itself. Same route table,
same weights, same sticky assignment as the gateway, so a member lands on the same side
whichever of the two does the routing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs import context
from libs.routing.sticky import MemberKeys, session_cookie, sticky_key
from libs.routing.table import RouteTable, parse_route_table
from libs.routing.upstream import Upstreams
from libs.timeouts import CallTimeouts
from libs.timeouts.deadline import parse_budget_ms

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def install_forwarding(
    app: Any,
    local: str,
    config: Mapping[str, Any] | None,
    backends: Mapping[str, str],
    verify: Callable[[str], int],
    timeouts: CallTimeouts,
) -> None:
    """Mount forwarding on `app` (a Starlette/FastAPI app) when `config` holds a route table
    whose weights name `local` for the share this process keeps. No config: no middleware."""
    if not config:
        return
    table = parse_route_table(config, {local, *backends})
    remote = {name: url for name, url in backends.items() if name != local}
    app.add_middleware(
        ForwardingMiddleware,
        local=local,
        table=table,
        upstreams=Upstreams(remote),
        members=MemberKeys(verify),
        timeouts=timeouts,
    )


class ForwardingMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        local: str,
        table: RouteTable,
        upstreams: Upstreams,
        members: MemberKeys,
        timeouts: CallTimeouts,
    ) -> None:
        self.app = app
        self.local = local
        self.table = table
        self.upstreams = upstreams
        self.members = members
        self.timeouts = timeouts
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing_on_shutdown(receive), send)
            return
        route = (
            self.table.match(scope["path"], scope["method"]) if scope["type"] == "http" else None
        )
        if route is None:
            await self.app(scope, receive, send)
            return
        headers = {k: v.decode("latin-1") for k, v in scope["headers"]}
        key, new_sid = sticky_key(
            headers.get(b"authorization"), headers.get(b"cookie"), self.members
        )
        backend = route.choose(key)
        cookie = [(b"set-cookie", session_cookie(new_sid).encode())] if new_sid else []
        if backend == self.local:
            await self.app(scope, receive, _adding(send, cookie))
            return
        await self._forward(backend, headers, cookie, scope, receive, send)

    async def _forward(
        self,
        backend: str,
        headers: dict[bytes, str],
        cookie: list[tuple[bytes, bytes]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if not self.started:  # a server that never ran the lifespan
            raise RuntimeError("forwarding needs the ASGI lifespan: its upstream pool starts there")
        rid = headers.get(b"x-request-id", "")
        rid = rid if _SAFE_REQUEST_ID.match(rid) else uuid.uuid4().hex
        budget = parse_budget_ms(headers.get(b"x-shop-deadline-ms"))
        token = context.request_id.set(rid)
        try:
            await self.upstreams.forward(
                backend,
                scope,
                receive,
                send,
                timeouts=self.timeouts,
                request_id=rid,
                deadline_seconds=min(budget or self.timeouts.read, self.timeouts.read * 0.9),
                response_headers=[(b"x-request-id", rid.encode()), *cookie],
                error_headers={"X-Served-By": self.local, "X-Request-Id": rid}
                | ({"Set-Cookie": cookie[0][1].decode()} if cookie else {}),
            )
        finally:
            context.request_id.reset(token)

    def _closing_on_shutdown(self, receive: Receive) -> Receive:
        """The upstream pool lives as long as the app: opened at startup, before the first
        request can need it, and closed at shutdown."""

        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup" and not self.started:
                await self.upstreams.start()
                self.started = True
            elif message["type"] == "lifespan.shutdown":
                await self.upstreams.close()
                self.started = False
            return message

        return wrapped


def _adding(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    if not headers:
        return send

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *headers]
        await send(message)

    return wrapped
