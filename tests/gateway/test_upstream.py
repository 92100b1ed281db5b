"""The forwarder on its own: idempotent requests are sent again when the connection failed
before the backend answered; a POST never is."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from libs.routing.upstream import Upstreams
from libs.timeouts import CallTimeouts

ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
    b"x-served-by: flaky\r\n\r\n{}"
)


@pytest.fixture
async def flaky_backend() -> AsyncIterator[tuple[str, list[str]]]:
    """Drops the first connection after reading the request (a stale keep-alive connection,
    a restarting process); answers every later one."""
    connections: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        connections.append(request.split(b" ", 1)[0].decode())
        if len(connections) > 1:
            writer.write(ANSWER)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", connections


async def forward(url: str, method: str) -> tuple[list[dict], int]:
    upstreams = Upstreams({"flaky": url})
    await upstreams.start()
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/api/x", "headers": [], "client": None}
    try:
        outcome = await upstreams.forward(
            "flaky", scope, receive, send, timeouts=CallTimeouts(1, 2), request_id="r1"
        )
    finally:
        await upstreams.close()
    return sent, outcome.attempts


async def test_an_idempotent_request_is_sent_again_when_the_connection_drops(flaky_backend):
    url, connections = flaky_backend
    sent, _ = await forward(url, "GET")
    assert sent[0]["status"] == 200
    assert connections == ["GET", "GET"]


async def test_a_post_is_never_sent_twice(flaky_backend):
    url, connections = flaky_backend
    sent, attempts = await forward(url, "POST")
    assert sent[0]["status"] == 502 and attempts == 1
    assert connections == ["POST"]


async def test_a_refused_connection_is_retried_for_a_get_and_not_for_a_post():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    get, get_attempts = await forward(url, "GET")
    post, post_attempts = await forward(url, "POST")
    assert get[0]["status"] == post[0]["status"] == 502
    assert (get_attempts, post_attempts) == (2, 1)
