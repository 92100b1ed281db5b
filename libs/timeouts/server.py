"""A server-side time limit that answers with an envelope (504 TIMEOUT), never a dropped
connection, and that shrinks to the caller's propagated deadline when that is shorter.

A 504 TIMEOUT means "not committed": the time limit and the handler's commit race for the
request's commit guard (commit_guard.py). When the limit fires first, the 504 goes out and
the handler's commit, if it still tries one, is refused; when a commit came first, or the
handler's response had already started, the handler's own answer goes out, however late."""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs import context
from libs.asgi import ResponseWatch
from libs.response.server import error_response
from libs.timeouts.commit_guard import CommitGuard, install_commit_guard
from libs.timeouts.deadline import parse_budget_ms


class _Gate:
    """The handler's `send` until the 504 is chosen; after that, what it sends is dropped."""

    def __init__(self, send: Send) -> None:
        self.send, self.open = send, True

    async def __call__(self, message: Message) -> None:
        if self.open:
            await self.send(message)


class ServerTimeLimit:
    def __init__(self, app: ASGIApp, limit_seconds: float, exempt_prefixes=("/health",)) -> None:
        self.app = app
        self.limit = limit_seconds
        self.exempt = tuple(exempt_prefixes)
        install_commit_guard()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        budget = self._budget(scope)
        guard = CommitGuard()
        tokens = (
            context.deadline.set(time.monotonic() + budget),
            context.commit_guard.set(guard),
        )
        gate = _Gate(send)
        watch = ResponseWatch(gate)
        # The handler runs in its own task (a copy of this context: the same guard), so the
        # time limit can decide before anything is cancelled.
        handler = asyncio.ensure_future(self.app(scope, receive, watch))
        try:
            await self._answer(handler, guard, gate, watch, budget, scope, receive, send)
        except BaseException:
            handler.cancel()
            raise
        finally:
            context.commit_guard.reset(tokens[1])
            context.deadline.reset(tokens[0])

    async def _answer(self, handler, guard, gate, watch, budget, scope, receive, send) -> None:
        done, _ = await asyncio.wait({handler}, timeout=budget)
        if done:
            handler.result()
            return
        if watch.started or not guard.claim_timeout():
            # The answer is on its way, or a commit claimed the request first: the handler's
            # answer is the truth (cutting the connection instead would hide a write).
            await handler
            return
        gate.open = False
        handler.cancel()
        response = error_response(
            504,
            "TIMEOUT",
            f"The request did not finish within {budget:g}s.",
            [{"limit_seconds": round(budget, 3)}],
        )
        await response(scope, receive, send)
        # A sync handler's thread runs on until it returns; its commit is refused.
        await _cancelled(handler)

    def _budget(self, scope: Scope) -> float:
        for key, value in scope.get("headers", []):
            if key == b"x-shop-deadline-ms":
                propagated = parse_budget_ms(value.decode("latin-1"))
                if propagated is not None:
                    return min(self.limit, propagated)
        return self.limit


async def _cancelled(handler: asyncio.Future) -> None:
    handler.cancel()
    await asyncio.wait({handler})
    if not handler.cancelled():
        handler.exception()  # retrieved: what a refused commit raised is expected, not news
