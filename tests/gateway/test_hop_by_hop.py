"""Headers a request names in `Connection:` belong to that hop alone (RFC 9110 7.6.1): the
gateway drops them, with the fixed hop-by-hop set, before it forwards, and drops the ones the
backend's answer names before it relays."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx

from tests.gateway.conftest import RunningGateway


def test_headers_named_in_connection_are_not_forwarded(gateway: RunningGateway):
    answer = httpx.get(
        f"{gateway.url}/api/members/echo-headers",
        headers={
            "Connection": "keep-alive, X-Hop-Secret, x-other-hop",
            "X-Hop-Secret": "for the gateway only",
            "X-Other-Hop": "also",
            "Keep-Alive": "timeout=5",
            "X-End-To-End": "kept",
        },
    )
    assert answer.status_code == 200, answer.text
    seen = answer.json()["data"]["headers"]
    assert "x-hop-secret" not in seen and "x-other-hop" not in seen
    assert "keep-alive" not in seen
    assert seen["x-end-to-end"] == "kept"


def test_a_connection_header_sent_twice_is_read_whole(gateway: RunningGateway):
    where = urlsplit(gateway.url)
    request = (
        "GET /api/members/echo-headers HTTP/1.1\r\n"
        f"Host: {where.netloc}\r\n"
        "Connection: X-First\r\n"
        "Connection: close, X-Second\r\n"
        "X-First: 1\r\nX-Second: 2\r\nX-Third: 3\r\n\r\n"
    )
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    body = data.partition(b"\r\n\r\n")[2].decode()
    assert '"x-third":"3"' in body
    assert "x-first" not in body and "x-second" not in body


def test_headers_the_backend_names_in_connection_are_not_relayed(gateway: RunningGateway):
    answer = httpx.get(f"{gateway.url}/api/members/echo-headers?hop=1")
    assert answer.status_code == 200
    assert "x-backend-hop" not in answer.headers
    assert answer.headers["x-backend-end-to-end"] == "kept"
