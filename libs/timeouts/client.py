"""Outbound HTTP with declared timeouts, the request id and the remaining deadline attached."""

from __future__ import annotations

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

    return httpx.AsyncClient(
        base_url=base_url,
        timeout=_timeout(timeouts),
        limits=httpx.Limits(max_connections=max_connections),
        event_hooks={"request": [stamp]},
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
    return httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=_timeout(timeouts),
        limits=httpx.Limits(max_connections=max_connections),
        event_hooks={"request": [lambda request: _stamp(request, timeouts)]},
    )


def _timeout(timeouts: CallTimeouts) -> httpx.Timeout:
    return httpx.Timeout(
        connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=timeouts.connect
    )


def _stamp(request: httpx.Request, timeouts: CallTimeouts) -> None:
    request.headers.update(outbound_headers())
    left = remaining_seconds()
    if left is not None and left < timeouts.read:
        request.extensions["timeout"] = {**request.extensions["timeout"], "read": left}
