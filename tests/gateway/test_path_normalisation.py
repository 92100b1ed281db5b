"""A path is normalised once at the edge: dot segments are resolved (RFC 3986 5.2.4) after the
percent-encoded unreserved characters are decoded, the route is matched on the result and the
backend gets exactly that path. Ambiguous paths (an encoded '/' or '\\', a doubled '/') are
refused. Raw sockets, because HTTP clients tidy a path before they send it."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

from libs.response import is_valid_envelope
from tests.gateway.conftest import RunningGateway


def raw_get(base_url: str, target: str, headers: dict[str, str] | None = None):
    """Send `target` exactly as written; return (status, headers, body)."""
    where = urlsplit(base_url)
    lines = [f"GET {target} HTTP/1.1", f"Host: {where.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answer_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        answer_headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), answer_headers, body


def test_dot_segments_cannot_reach_a_backends_metrics(gateway: RunningGateway):
    for target in (
        "/api/members/%2e%2e/%2e%2e/metrics",
        "/api/members/%2E%2E/..%2f..%2fmetrics",
        "/api/members/../../metrics",
        "/api/members/.%2e/.%2E/health/ready",
    ):
        status, headers, _ = raw_get(gateway.url, target)
        assert headers.get("x-served-by") == "gateway", (target, status, headers)
        assert "x-routed-to" not in headers, target


def test_a_dot_segment_path_is_routed_by_the_route_it_resolves_to(gateway: RunningGateway):
    gateway.set_weights("members", {"monolith": 0, "member-service": 1})
    status, headers, body = raw_get(gateway.url, "/api/members/%2e%2e/orders/./1")
    assert status == 200, body
    assert headers["x-routed-to"] == "monolith"  # the orders route's backend
    assert json.loads(body)["data"]["path"] == "/api/orders/1"


def test_encoded_unreserved_characters_are_decoded_before_matching(gateway: RunningGateway):
    status, headers, body = raw_get(gateway.url, "/api/%6Dembers/%7Ea%2D1")
    assert status == 200, body
    assert headers["x-routed-to"] == "monolith"
    assert json.loads(body)["data"]["path"] == "/api/members/~a-1"


def test_other_percent_escapes_pass_through_encoded(gateway: RunningGateway):
    status, _, body = raw_get(gateway.url, "/api/members/a%20b%3fc")
    assert status == 200, body
    assert json.loads(body)["data"]["path"] == "/api/members/a b?c"


def test_ambiguous_paths_are_refused_with_a_400_envelope(gateway: RunningGateway):
    for target in (
        "/api/members/a%2fb",
        "/api/members/a%2F..%2F..%2Fmetrics",
        "/api/members/a%5cb",
        "/api/members/a\\b",
        "//api/members/1",
        "/api/members//1",
        "/api/members/%00",
        "/api/members/%zz",
    ):
        status, headers, body = raw_get(gateway.url, target)
        assert status == 400, (target, status, body)
        assert headers["x-served-by"] == "gateway", target
        envelope = json.loads(body)
        assert is_valid_envelope(envelope) and envelope["error"]["code"] == "AMBIGUOUS_PATH"
