"""An HTTP client that checks the contracts on every response it sees: a valid envelope, the
X-Request-Id and X-Served-By headers, and no 5xx."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from libs.response import is_valid_envelope


@dataclass
class Reply:
    status: int
    body: Any
    headers: httpx.Headers

    @property
    def data(self) -> Any:
        return self.body.get("data") if isinstance(self.body, dict) else None

    @property
    def code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error.get("code") if isinstance(error, dict) else None


@dataclass
class Tally:
    requests: int = 0
    by_status: Counter = field(default_factory=Counter)
    served_by: Counter = field(default_factory=Counter)
    by_route: Counter = field(default_factory=Counter)  # (first path segment after /api, backend)
    latencies: list[float] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def record(self, method: str, path: str, reply: Reply, seconds: float) -> None:
        self.requests += 1
        self.by_status[reply.status] += 1
        backend = reply.headers.get("x-served-by", "?")
        self.served_by[backend] += 1
        segments = path.split("?")[0].split("/")  # "/api/members/me" -> route "members"
        self.by_route[segments[2] if len(segments) > 2 else "?", backend] += 1
        self.latencies.append(seconds)
        where = f"{method} {path} -> {reply.status}"
        if not is_valid_envelope(reply.body):
            self.violations.append(f"{where}: the body is not an envelope")
        if not reply.headers.get("x-request-id") or not reply.headers.get("x-served-by"):
            self.violations.append(f"{where}: X-Request-Id or X-Served-By is missing")
        if reply.status >= 500:
            error = reply.body.get("error") if isinstance(reply.body, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            self.violations.append(f"{where}: server error {reply.code}: {message}")


class ShopClient:
    def __init__(self, base_url: str, tally: Tally, timeout: float = 10.0) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self.tally = tally

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        response = await self.http.request(
            method, path, json=json, content=content, headers=sent, params=params
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        reply = Reply(response.status_code, body, response.headers)
        self.tally.record(method, path, reply, time.perf_counter() - started)
        return reply

    async def aclose(self) -> None:
        await self.http.aclose()
