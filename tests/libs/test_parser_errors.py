"""A request uvicorn cannot parse (a broken request line, a malformed header) is answered with
the envelope, X-Request-Id and X-Served-By like every other error, not uvicorn's plain-text
400 (issue 15, finding 8). Before, a client got `text/plain` "Invalid HTTP request received."."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from infra.supervisor import free_port
from libs.observability.health import Readiness
from libs.observability.shutdown import GracefulServer, server_config
from libs.response import is_valid_envelope
from libs.service import ServiceOptions, create_service_app


@pytest.fixture(scope="module")
def port():
    port = free_port()
    app = create_service_app(ServiceOptions("parser-test"))
    server = GracefulServer(
        server_config(app, host="127.0.0.1", port=port, grace_seconds=1), Readiness(), 0.0
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def raw(port: int, data: bytes) -> tuple[str, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return status, headers, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NOT A REQUEST\r\n\r\n",
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ],
    ids=["request line", "header", "two content lengths"],
)
def test_an_unparsable_request_gets_a_400_envelope(port, request_bytes):
    status, headers, body = raw(port, request_bytes)
    assert status.startswith("HTTP/1.1 400")
    assert headers["content-type"] == "application/json"
    assert headers["x-served-by"] == "parser-test"
    answer = json.loads(body)
    assert is_valid_envelope(answer)
    assert answer["error"]["code"] == "BAD_REQUEST"
    assert answer["meta"]["request_id"] == headers["x-request-id"]
