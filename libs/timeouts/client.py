"""Outbound HTTP with declared timeouts, the request id and the remaining deadline attached;
a refused connection is tried again while the deadline allows.

A refused connection sent nothing, so any method may go again: a peer restarting (a rolling
restart, a crash and its restart) is then a wait for its new process, not an error, as long as
the caller's deadline lasts. Past the deadline, or past RECONNECT_SECONDS, the refusal stands."""

from __future__ import annotations

import asyncio
import time

import httpx

from libs import context
from libs.response.envelope import REQUEST_ID_HEADER
from libs.timeouts.budget import CallTimeouts
from libs.timeouts.deadline import DEADLINE_HEADER, remaining_seconds


def outbound_headers() -> dict[str, str]:
    headers = {}
    if rid := context.request_id.get():
        headers[REQUEST_ID_HEADER] = rid
    left = remaining_seconds()
    if left is not None:
        headers[DEADLINE_HEADER] = str(int(left * 1000))
    return headers


def make_http_client(
    base_url: str, timeouts: CallTimeouts, *, max_connections: int = 100
) -> httpx.AsyncClient:
    """An AsyncClient whose every request carries explicit connect/read timeouts, shortened
    to the propagated deadline, plus the request id. Build it in a lifespan, close it there."""

    async def stamp(request: httpx.Request) -> None:
        _stamp(request, timeouts)

    limits = httpx.Limits(max_connections=max_connections)
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=_timeout(timeouts),
        limits=limits,
        event_hooks={"request": [stamp]},
        transport=_AsyncReconnecting(httpx.AsyncHTTPTransport(limits=limits)),
    )


def make_blocking_http_client(
    base_url: str,
    timeouts: CallTimeouts,
    *,
    headers: dict[str, str] | None = None,
    max_connections: int = 100,
) -> httpx.Client:
    """The same for callers that run in threads (a sync route's handler): the deadline is the
    one of the request the thread serves."""
    limits = httpx.Limits(max_connections=max_connections)
    return httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=_timeout(timeouts),
        limits=limits,
        event_hooks={"request": [lambda request: _stamp(request, timeouts)]},
        transport=_Reconnecting(httpx.HTTPTransport(limits=limits)),
    )


# The longest a call waits for a refused peer to listen again (a restart takes seconds).
RECONNECT_SECONDS = 10.0
_BACKOFF = (0.05, 0.1, 0.2, 0.4, 0.8)  # then 0.8 s between tries


def _pause(started: float, tries: int) -> float | None:
    """Seconds to wait before trying a refused connection again, or None to give up."""
    pause = _BACKOFF[min(tries, len(_BACKOFF) - 1)]
    left = remaining_seconds()
    budget = RECONNECT_SECONDS - (time.monotonic() - started)
    if left is not None:
        budget = min(budget, left - 0.05)
    return pause if pause < budget else None


class _Reconnecting(httpx.BaseTransport):
    def __init__(self, inner: httpx.HTTPTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started, tries = time.monotonic(), 0
        while True:
            try:
                return self.inner.handle_request(request)
            except httpx.ConnectError:
                pause = _pause(started, tries)
                if pause is None:
                    raise
                time.sleep(pause)
                tries += 1

    def close(self) -> None:
        self.inner.close()


class _AsyncReconnecting(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncHTTPTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started, tries = time.monotonic(), 0
        while True:
            try:
                return await self.inner.handle_async_request(request)
            except httpx.ConnectError:
                pause = _pause(started, tries)
                if pause is None:
                    raise
                await asyncio.sleep(pause)
                tries += 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def _timeout(timeouts: CallTimeouts) -> httpx.Timeout:
    return httpx.Timeout(
        connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=timeouts.connect
    )


def _stamp(request: httpx.Request, timeouts: CallTimeouts) -> None:
    request.headers.update(outbound_headers())
    left = remaining_seconds()
    if left is not None and left < timeouts.read:
        request.extensions["timeout"] = {**request.extensions["timeout"], "read": left}
