"""The edge bounds what a caller can hold: a body is read whole (up to a limit) before a backend
is asked, so a slow or stalled upload ties up only its own connection to the gateway, never
one of the pool's to a backend; and a backend that is restarting is waited for, not answered
with a 502. Each test failed before the change it covers (issue 15, findings 2, 3 and 5)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from gateway.app import create_app
from infra.supervisor import free_port
from libs.response import is_valid_envelope
from tests.gateway.conftest import (
    Backend,
    Behaviour,
    RunningGateway,
    gateway_settings,
    make_backend,
    serving,
)


@pytest.fixture
def small(tmp_path, backends: dict[str, Backend]) -> Iterator[RunningGateway]:
    """A gateway with a pool of 4 backend connections, a 1,000-byte body limit and a body
    idle timeout of 1 s."""
    settings = gateway_settings(
        tmp_path,
        backends,
        gateway_max_connections=4,
        gateway_max_body_bytes=1000,
        gateway_body_idle_timeout=1.0,
    )
    with serving(create_app(settings)) as url:
        yield RunningGateway(url, settings)


def test_a_body_over_the_limit_is_a_413_the_backend_never_sees(small, backends):
    seen = backends["monolith"].behaviour.seen
    declared = httpx.post(f"{small.url}/api/orders", content=b"x" * 2000)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert declared.json()["error"]["details"] == [{"limit_bytes": 1000, "content_length": 2000}]
    assert declared.headers["x-served-by"] == "gateway"

    def chunks() -> Iterator[bytes]:  # no Content-Length: caught while reading
        for _ in range(20):
            yield b"y" * 100

    streamed = httpx.post(f"{small.url}/api/orders", content=chunks())
    assert streamed.status_code == 413
    assert is_valid_envelope(streamed.json())
    assert backends["monolith"].behaviour.seen == seen
    # At the limit it goes through whole.
    at_limit = httpx.post(f"{small.url}/api/orders", content=b"z" * 1000)
    assert at_limit.status_code == 200
    assert at_limit.json()["data"]["body"] == "z" * 1000


def stalled_upload(url: str) -> socket.socket:
    """A POST that promises 100 bytes and sends 4."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(b"POST /api/orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 100\r\n\r\nabcd")
    return sock


def test_stalled_uploads_hold_no_backend_connection_and_get_a_408(small):
    with ExitStack() as stack:
        stalled = [stack.enter_context(stalled_upload(small.url)) for _ in range(12)]
        time.sleep(0.3)
        # Three times the pool's size are stalled; a GET still gets a connection at once.
        # (Before, each stalled upload held a pooled connection while the backend waited for
        # the rest of its body: the GET queued for one, past this timeout.)
        answer = httpx.get(f"{small.url}/api/members/7", timeout=0.9)
        assert answer.status_code == 200
        # Past the idle timeout each stalled upload is answered and closed.
        first = stalled[0].recv(4096).decode()
        assert first.startswith("HTTP/1.1 408 ")
        assert '"code":"REQUEST_TIMEOUT"' in first


def test_a_request_for_a_backend_that_restarts_waits_for_it(tmp_path):
    """The backend stops (its port refuses connections) and comes back 1.5 s later: a write
    sent in between is answered by the new process, not with a 502."""
    port = free_port()
    behaviour = Behaviour()
    first = serving(make_backend("monolith", behaviour), port)
    url = first.__enter__()
    backends = {"monolith": Backend("monolith", url, behaviour)}
    settings = gateway_settings(tmp_path, backends)
    with serving(create_app(settings)) as gateway:
        assert httpx.get(f"{gateway}/api/members/7").status_code == 200
        time.sleep(0.6)  # a health check has seen it ready
        first.__exit__(None, None, None)
        restarted = threading.Timer(1.5, lambda: second.__enter__())
        second = serving(make_backend("monolith", behaviour), port)
        restarted.start()
        try:
            started = time.monotonic()
            answer = httpx.post(f"{gateway}/api/orders", content=b'{"sku": "A"}', timeout=10)
            waited = time.monotonic() - started
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["body"] == '{"sku": "A"}'
            assert waited >= 0.5  # it was held, not answered by the old process
            metrics = httpx.get(f"{gateway}/metrics").text
            assert 'shop_gateway_backend_ready{backend="monolith"} 1.0' in metrics
        finally:
            restarted.join()
            second.__exit__(None, None, None)


def test_a_backend_never_seen_ready_fails_fast(gateway: RunningGateway):
    # No process listens on order-service's port: no outage to wait out, a 502 at once.
    gateway.set_weights("orders", {"monolith": 0, "order-service": 1})
    time.sleep(0.6)
    started = time.monotonic()
    answer = httpx.post(f"{gateway.url}/api/orders", content=b"{}")
    assert answer.status_code == 502
    assert time.monotonic() - started < 2.0
