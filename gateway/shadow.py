"""Shadow mode (parallel run): a share of safe GET requests is repeated against the candidate
after the caller already has the primary answer, and the two answers are compared. The caller
never waits for, or sees, the candidate; differences are counted and the latest kept to read.

Volatile fields (request ids, timestamps) differ on every call and would drown real
differences, so comparisons skip fields matching ignore patterns (fnmatch on dotted paths,
e.g. `meta.request_id`, `data.*.updated_at`, `*.created_at`)."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.metrics import GatewayMetrics
from libs.routing import Route
from libs.routing.upstream import Upstreams

log = logging.getLogger("shop.gateway.shadow")
MAX_DIFFERENCES = 20
_MISSING = "<missing>"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"data": {"items": [{"id": 1}]}} -> {"data.items.0.id": 1}; empty containers kept."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix: value}


def differences(primary: bytes, candidate: bytes, ignore: Sequence[str]) -> list[dict[str, Any]]:
    """Field-by-field differences between two answers, ignored paths left out."""
    try:
        left, right = flatten(json.loads(primary)), flatten(json.loads(candidate))
    except ValueError:
        same = primary == candidate
        return [] if same else [{"path": "<body>", "primary": "<bytes>", "candidate": "<bytes>"}]
    found = []
    for path in sorted(set(left) | set(right)):
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in ignore):
            continue
        a, b = left.get(path, _MISSING), right.get(path, _MISSING)
        if a != b:
            found.append({"path": path, "primary": a, "candidate": b})
            if len(found) >= MAX_DIFFERENCES:
                break
    return found


@dataclass(frozen=True)
class Mirror:
    """One sampled request to repeat against the candidate."""

    route: Route
    path: str
    headers: list[tuple[str, str]]
    primary_backend: str
    primary_status: int
    primary_body: bytes
    request_id: str


class ShadowRunner:
    def __init__(
        self,
        upstreams: Upstreams,
        metrics: GatewayMetrics,
        *,
        default_ignore: Sequence[str],
        max_in_flight: int,
        timeout_seconds: float,
        keep: int = 50,
    ) -> None:
        self.upstreams = upstreams
        self.metrics = metrics
        self.default_ignore = tuple(default_ignore)
        self.max_in_flight = max_in_flight
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.mismatches: deque[dict[str, Any]] = deque(maxlen=keep)
        self.counts: dict[str, dict[str, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def wants(self, route: Route, method: str, primary_backend: str) -> bool:
        """Sampled before forwarding, so the primary answer is captured only when needed."""
        rule = route.shadow
        return (
            rule is not None
            and method == "GET"
            and primary_backend != rule.backend
            and random.random() * 100 < rule.percent
        )

    def submit(self, mirror: Mirror) -> None:
        if len(self._tasks) >= self.max_in_flight:
            # Shadow traffic must never slow the real traffic down: drop, and count it.
            self._count(mirror.route.name, "dropped")
            return
        task = asyncio.create_task(self._compare(mirror))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _compare(self, mirror: Mirror) -> None:
        rule = mirror.route.shadow
        assert rule is not None
        url = self.upstreams.urls[rule.backend] + mirror.path
        headers = [*mirror.headers, ("X-Request-Id", f"{mirror.request_id}:shadow")]
        headers.append(("X-Shop-Shadow", "1"))
        try:
            async with self.upstreams.session.get(
                url, headers=headers, timeout=self.timeout, allow_redirects=False
            ) as answer:
                body, status = await answer.read(), answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._count(mirror.route.name, "error")
            self._keep(mirror, None, [{"path": "<request>", "candidate": type(exc).__name__}])
            return
        ignore = (*self.default_ignore, *rule.ignore)
        found = differences(mirror.primary_body, body, ignore)
        if status != mirror.primary_status:
            found.insert(
                0, {"path": "<status>", "primary": mirror.primary_status, "candidate": status}
            )
        if found:
            self._count(mirror.route.name, "mismatch")
            self._keep(mirror, status, found)
        else:
            self._count(mirror.route.name, "match")

    def _count(self, route: str, outcome: str) -> None:
        self.metrics.shadow.labels(route, outcome).inc()
        per_route = self.counts.setdefault(
            route, {"match": 0, "mismatch": 0, "error": 0, "dropped": 0}
        )
        per_route[outcome] += 1

    def _keep(self, mirror: Mirror, status: int | None, found: list[dict[str, Any]]) -> None:
        rule = mirror.route.shadow
        self.mismatches.appendleft(
            {
                "at": time.time(),
                "route": mirror.route.name,
                "path": mirror.path,
                "request_id": mirror.request_id,
                "primary": {"backend": mirror.primary_backend, "status": mirror.primary_status},
                "candidate": {"backend": rule.backend if rule else "", "status": status},
                "differences": found,
            }
        )

    def status(self) -> dict[str, Any]:
        return {"counts": self.counts, "latest_mismatches": list(self.mismatches)}

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
