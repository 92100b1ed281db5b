"""What a load balancer knows of its targets: each backend's readiness, asked of its
`/health/ready` every interval (an active check) and learnt from a refused connection (a
passive one).

A backend that is not ready is out of rotation: a request for it is held (up to a bounded wait)
until it is ready again instead of being sent to a process that is draining or not listening.
That is what turns a restart behind the gateway into latency instead of errors: on SIGTERM a
process answers not-ready for its drain delay while still serving, the gateway stops sending
it new work, the in-flight requests finish, the process stops and starts again, and the held
requests go to the new one as soon as it says ready.

The wait is bounded twice: by the request's own budget, and by the outage's age. Requests are
held only during the first `hold` seconds after a backend that was ready went away (a restart
takes a few); past that, or for a backend never seen ready, they fail open at once, as a load
balancer with every target unhealthy does: forwarded, and answered whatever the backend
answers (a 502 when nothing listens). A long outage costs no one a wait."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping

import aiohttp
from prometheus_client import CollectorRegistry, Gauge

log = logging.getLogger("shop.gateway.health")


class BackendHealth:
    def __init__(
        self,
        urls: Mapping[str, str],
        registry: CollectorRegistry,
        *,
        interval: float = 0.25,
        timeout: float = 0.5,
        hold: float = 10.0,
    ) -> None:
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.interval = interval
        self.timeout = timeout
        self.hold = hold
        self._seen: set[str] = set()  # backends ever ready: only their outages hold requests
        self._ready = {name: asyncio.Event() for name in self.urls}
        for event in self._ready.values():
            event.set()
        self._since = {name: time.time() for name in self.urls}
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.gauge = Gauge(
            "shop_gateway_backend_ready",
            "1 while the gateway sends a backend traffic (its /health/ready answers ready), 0 "
            "while requests for it are held.",
            ["backend"],
            registry=registry,
        )
        for name in self.urls:
            self.gauge.labels(name).set(1)

    def start(self) -> None:
        # Its own small pool: a check never waits behind proxied traffic for a connection.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=len(self.urls) * 2, force_close=True),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        self._task = asyncio.create_task(self._watch(), name="gateway-backend-health")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def is_ready(self, backend: str) -> bool:
        event = self._ready.get(backend)
        return event is None or event.is_set()

    async def admit(self, backend: str, budget: float) -> bool:
        """Waits while `backend` is out of rotation and its outage is young, at most `budget`
        seconds; True when it is (back) in rotation, False when the request goes anyway."""
        event = self._ready.get(backend)
        if event is None or event.is_set():
            return True
        if backend not in self._seen:
            return False
        wait = min(budget, self._since[backend] + self.hold - time.time())
        if wait <= 0:
            return False
        try:
            async with asyncio.timeout(wait):
                await event.wait()
        except TimeoutError:
            return False
        return True

    def refused(self, backend: str) -> None:
        """A connection to `backend` was refused: out of rotation until a check says ready."""
        self._set(backend, False, "connection refused")

    def view(self) -> dict[str, dict[str, object]]:
        return {
            name: {"ready": event.is_set(), "since": self._since[name]}
            for name, event in self._ready.items()
        }

    async def _watch(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.gather(*(self._check(name) for name in self.urls))
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def _check(self, backend: str) -> None:
        assert self._session is not None
        try:
            async with self._session.get(f"{self.urls[backend]}/health/ready") as answer:
                ready, why = answer.status == 200, f"/health/ready answered {answer.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            ready, why = False, f"/health/ready: {type(exc).__name__}"
        if ready:
            self._seen.add(backend)
        self._set(backend, ready, why)

    def _set(self, backend: str, ready: bool, why: str) -> None:
        event = self._ready.get(backend)
        if event is None or event.is_set() == ready:
            return
        if ready:
            event.set()
        else:
            event.clear()
        self._since[backend] = time.time()
        self.gauge.labels(backend).set(1 if ready else 0)
        # A backend that never came up (not part of this stage's system) is not news.
        level = logging.WARNING if backend in self._seen else logging.DEBUG
        what = "back in rotation" if ready else "out of rotation"
        log.log(level, "backend %s %s (%s)", backend, what, why)
