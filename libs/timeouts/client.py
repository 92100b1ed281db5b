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
        request.headers.update(outbound_headers())
        left = remaining_seconds()
        if left is not None and left < timeouts.read:
            request.extensions["timeout"] = {**request.extensions["timeout"], "read": left}

    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(
            connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=timeouts.connect
        ),
        limits=httpx.Limits(max_connections=max_connections),
        event_hooks={"request": [stamp]},
    )
