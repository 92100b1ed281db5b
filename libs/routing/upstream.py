"""Forwarding one ASGI request to a backend and streaming the answer back, with explicit
connect/read timeouts, the deadline passed on, and the proxy's own failures as envelopes.

aiohttp, not httpx: proxying is the hot path, and measured on this project's 2-core machine a
minimal proxy on httpx.AsyncClient reached ~200 req/s at 32 concurrent callers (its connection
pool serialises under load, encode/httpx#3215) where the same proxy on aiohttp reached ~2,900.
httpx stays the client for low-volume calls between services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from libs.response.server import error_response
from libs.routing.table import IDEMPOTENT_METHODS
from libs.timeouts import CallTimeouts

# Connection-level headers belong to one hop and must not be forwarded (RFC 9110, 7.6.1).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)
_DROP_UPSTREAM = HOP_BY_HOP | {b"x-request-id", b"x-shop-deadline-ms"}
# The server in front sets its own Date and Server; the request id is set by the forwarder.
_DROP_DOWNSTREAM = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"trailer", b"upgrade"}
    | {b"date", b"server", b"x-request-id"}
)
# A refused or unreachable connection never reached the backend. (A persistent connection the
# backend closed under an idempotent request is already retried once inside aiohttp, as RFC
# 9112 section 9.3.1 allows; counting that here too would send it a third time.)
_CONNECTION_FAILURES = (aiohttp.ClientConnectorError,)
_DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
# Small answers are read whole and sent in one message; larger ones are streamed.
_WHOLE_BODY_LIMIT = 256 * 1024


@dataclass
class Outcome:
    """What happened to one forwarded request, for metrics, the ramp and shadow comparison."""

    status: int
    seconds: float
    failure: str | None = None  # "connect", "timeout" or "broken" (after the answer started)
    attempts: int = 1
    body: bytes | None = None  # the full answer, when captured for comparison


# An idle pooled connection is closed after this long: shorter than the backends keep it open
# (libs/observability/shutdown.py KEEP_ALIVE_SECONDS), so the gateway is the one that closes.
POOL_KEEP_ALIVE_SECONDS = 30


class Upstreams:
    """One aiohttp session for every backend. Build it in a lifespan, close it there."""

    def __init__(self, urls: Mapping[str, str], *, max_connections: int = 256) -> None:
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.max_connections, limit_per_host=0, keepalive_timeout=POOL_KEEP_ALIVE_SECONDS
        )
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Upstreams.start() was not awaited")
        return self._session

    async def forward(
        self,
        backend: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        timeouts: CallTimeouts,
        request_id: str,
        deadline_seconds: float | None = None,
        retries: int = 1,
        response_headers: Sequence[tuple[bytes, bytes]] = (),
        error_headers: Mapping[str, str] | None = None,
        capture_body: bool = False,
        body: bytes | None = None,
        total_seconds: float | None = None,
        on_refused: Callable[[], Awaitable[bool]] | None = None,
    ) -> Outcome:
        """Relay the backend's answer with `response_headers` added, or answer 502/504 as an
        envelope with `error_headers` when the backend cannot be reached or is too slow.

        `body`: the request body read already (read_body), so it can be sent again; None
        streams it from `receive` as it arrives. `total_seconds` bounds the whole exchange.
        `on_refused`: asked after a refused connection (nothing was sent, so any method may
        go again); True means try again now, as often as it says so."""
        started = time.perf_counter()
        method = scope["method"]
        # encoded=True: the path goes out exactly as given (the gateway's normalised one), not
        # requoted or resolved again on the way.
        url = URL(self.urls[backend] + _target(scope), encoded=True)
        headers = _upstream_headers(scope, request_id, deadline_seconds)
        stream = _request_body(scope, receive) if body is None else None
        timeout = _timeout(timeouts, deadline_seconds, total_seconds)
        attempts = 1 + (retries if method in IDEMPOTENT_METHODS else 0)
        attempt = 0
        while attempt < attempts:
            attempt += 1
            try:
                async with self.session.request(
                    method,
                    url,
                    headers=headers,
                    data=stream.stream() if stream else body or None,
                    timeout=timeout,
                    allow_redirects=False,
                    skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                ) as answer:
                    outcome = await _relay(answer, scope, send, response_headers, capture_body)
                    outcome.attempts = attempt
                    outcome.seconds = time.perf_counter() - started
                    return outcome
            except TimeoutError as exc:
                # Checked first: aiohttp's read timeout is both a TimeoutError and a ClientError.
                failed = _Failure(504, "UPSTREAM_TIMEOUT", "timeout", exc, attempt)
            except _CONNECTION_FAILURES as exc:
                replayable = not (stream and stream.consumed)
                if replayable and on_refused is not None and await on_refused():
                    attempts += 1  # the backend is back: this attempt did not count
                    continue
                if attempt < attempts and replayable:
                    continue
                failed = _Failure(502, "BAD_GATEWAY", "connect", exc, attempt)
            except _DROPPED as exc:
                failed = _Failure(502, "BAD_GATEWAY", "dropped", exc, attempt)
            except aiohttp.ClientError as exc:
                failed = _Failure(502, "BAD_GATEWAY", "protocol", exc, attempt)
            await failed.answer(backend, scope, send, error_headers)
            return Outcome(failed.status, time.perf_counter() - started, failed.kind, attempt)
        raise AssertionError("unreachable")


class _Body:
    """The request body read from ASGI as it arrives, so large uploads are not buffered."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.consumed = False

    async def stream(self) -> AsyncIterator[bytes]:
        self.consumed = True
        more = True
        while more:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise aiohttp.ClientPayloadError("the caller went away mid-request")
            yield message.get("body", b"")
            more = message.get("more_body", False)


class BodyRefused(Exception):
    """The request body was not read: too large, or too slow to arrive. Answered as it says,
    before any backend connection is taken."""

    def __init__(self, status: int, code: str, message: str, details: list[dict]) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


class CallerGone(Exception):
    """The caller disconnected before its request body was whole: there is no one to answer."""


async def read_body(
    scope: Scope, receive: Receive, *, limit: int, idle_seconds: float, total_seconds: float
) -> bytes:
    """The whole request body, read before a backend is asked: a caller that sends it slowly
    (or never) then holds only its own connection to the gateway, never one of the pool's to a
    backend. Refused with 413 past `limit` bytes (by Content-Length before reading any, or
    while reading), 408 when no bytes arrive for `idle_seconds` or the whole body takes longer
    than `total_seconds`."""
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise _too_large(limit, int(value))
    if _request_body(scope, receive) is None:
        return b""
    chunks, size, more = [], 0, True
    try:
        async with asyncio.timeout(total_seconds):
            while more:
                async with asyncio.timeout(idle_seconds):
                    message = await receive()
                if message["type"] == "http.disconnect":
                    raise CallerGone()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit, None)
                chunks.append(chunk)
                more = message.get("more_body", False)
    except TimeoutError:
        raise BodyRefused(
            408,
            "REQUEST_TIMEOUT",
            f"The request body did not arrive in time ({size} bytes read).",
            [{"idle_seconds": idle_seconds, "total_seconds": round(total_seconds, 3)}],
        ) from None
    return b"".join(chunks)


def _too_large(limit: int, declared: int | None) -> BodyRefused:
    detail: dict = {"limit_bytes": limit}
    if declared is not None:
        detail["content_length"] = declared
    return BodyRefused(
        413, "PAYLOAD_TOO_LARGE", f"The request body is over {limit} bytes.", [detail]
    )


def connection_named(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The header names a message's Connection field lists (every Connection line, comma
    separated, any case): options for this hop only, dropped before the next (RFC 9110
    7.6.1), with the fixed hop-by-hop set."""
    return frozenset(
        name.strip().lower()
        for key, value in headers
        if key == b"connection"
        for name in value.split(b",")
        if name.strip()
    )


def _request_body(scope: Scope, receive: Receive) -> _Body | None:
    for key, value in scope["headers"]:
        if key == b"transfer-encoding" or (key == b"content-length" and value != b"0"):
            return _Body(receive)
    return None


def _target(scope: Scope) -> str:
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    return (path + (b"?" + query if query else b"")).decode("latin-1")


def _upstream_headers(
    scope: Scope, request_id: str, deadline_seconds: float | None
) -> list[tuple[str, str]]:
    named = connection_named(scope["headers"])
    headers = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in scope["headers"]
        if k not in _DROP_UPSTREAM and k not in named
    ]
    headers.append(("X-Request-Id", request_id))
    if deadline_seconds is not None:
        headers.append(("X-Shop-Deadline-Ms", str(int(deadline_seconds * 1000))))
    client = scope.get("client")
    if client:
        headers.append(("X-Forwarded-For", client[0]))
    return headers


def _timeout(
    timeouts: CallTimeouts, deadline_seconds: float | None, total_seconds: float | None = None
) -> aiohttp.ClientTimeout:
    read = timeouts.read
    if deadline_seconds is not None:
        # Wait a little past the deadline we pass on, so the backend's own 504 envelope (which
        # says what timed out) arrives before our read timeout fires.
        read = min(read, deadline_seconds + 0.25)
    return aiohttp.ClientTimeout(total=total_seconds, sock_connect=timeouts.connect, sock_read=read)


async def _relay(
    answer: aiohttp.ClientResponse,
    scope: Scope,
    send: Send,
    extra_headers: Sequence[tuple[bytes, bytes]],
    capture: bool,
) -> Outcome:
    named = connection_named((k.lower(), v) for k, v in answer.raw_headers)
    headers = [
        (k.lower(), v)
        for k, v in answer.raw_headers
        if k.lower() not in _DROP_DOWNSTREAM and k.lower() not in named
    ]
    headers += list(extra_headers)
    length = answer.content_length
    if scope["method"] == "HEAD" or (length is not None and length <= _WHOLE_BODY_LIMIT):
        whole = await answer.read()
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": whole})
        return Outcome(answer.status, 0.0, body=whole if capture else None)
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    captured = bytearray() if capture else None
    try:
        async for chunk in answer.content.iter_any():
            if captured is not None and len(captured) <= _WHOLE_BODY_LIMIT:
                captured += chunk
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except (aiohttp.ClientError, TimeoutError) as exc:
        # The status line is gone already: the only honest signal left is a broken stream.
        raise BrokenStream(answer.status) from exc
    await send({"type": "http.response.body", "body": b""})
    body = bytes(captured) if captured is not None and len(captured) <= _WHOLE_BODY_LIMIT else None
    return Outcome(answer.status, 0.0, body=body)


class BrokenStream(Exception):
    """The backend failed after its answer had started; the connection to the caller is cut."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the backend's answer (status {status}) broke off mid-body")
        self.status = status


@dataclass
class _Failure:
    status: int
    code: str
    kind: str
    exc: BaseException
    attempts: int

    async def answer(
        self, backend: str, scope: Scope, send: Send, headers: Mapping[str, str] | None
    ) -> None:
        if self.status == 502:
            message = f"The backend '{backend}' could not be reached."
        else:
            message = f"The backend '{backend}' did not answer in time."
        details = [{"backend": backend, "reason": type(self.exc).__name__}]
        response = error_response(self.status, self.code, message, details, dict(headers or {}))
        await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    await asyncio.sleep(0)
    return {"type": "http.disconnect"}
