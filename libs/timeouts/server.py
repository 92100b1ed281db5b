"""A server-side time limit that answers with an envelope (504 TIMEOUT), never a dropped
connection, and that shrinks to the caller's propagated deadline when that is shorter."""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from libs import context
from libs.asgi import ResponseWatch
from libs.response.server import error_response
from libs.timeouts.deadline import parse_budget_ms


class ServerTimeLimit:
    def __init__(self, app: ASGIApp, limit_seconds: float, exempt_prefixes=("/health",)) -> None:
        self.app = app
        self.limit = limit_seconds
        self.exempt = tuple(exempt_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        budget = self._budget(scope)
        token = context.deadline.set(time.monotonic() + budget)
        watch = ResponseWatch(send)
        try:
            async with asyncio.timeout(budget):
                await self.app(scope, receive, watch)
        except TimeoutError:
            if watch.started:
                raise
            response = error_response(
                504,
                "TIMEOUT",
                f"The request did not finish within {budget:g}s.",
                [{"limit_seconds": round(budget, 3)}],
            )
            await response(scope, receive, send)
        finally:
            context.deadline.reset(token)

    def _budget(self, scope: Scope) -> float:
        for key, value in scope.get("headers", []):
            if key == b"x-shop-deadline-ms":
                propagated = parse_budget_ms(value.decode("latin-1"))
                if propagated is not None:
                    return min(self.limit, propagated)
        return self.limit
