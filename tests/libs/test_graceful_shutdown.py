"""SIGTERM to a running process: readiness goes false, in-flight work finishes, exit 0."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from infra.supervisor import free_port

ROOT = Path(__file__).resolve().parents[2]


def _slow_service(grace: float, drain_delay: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    script = str(ROOT / "tests/support/slow_service.py")
    return _start([script, str(port), str(grace), str(drain_delay)], port, {})


def _start(args: list[str], port: int, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready", timeout=0.5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"did not start: {process.stdout.read().decode()[-2000:]}")


def test_an_in_flight_request_completes_after_sigterm_and_the_process_exits_0():
    process, url = _slow_service(grace=10, drain_delay=1.0)
    replies: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: replies.append(httpx.get(f"{url}/work/2", timeout=10)))
    worker.start()
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.2)

    draining = httpx.get(f"{url}/health/ready", timeout=2)
    assert draining.status_code == 503
    assert draining.json()["error"]["details"] == [{"state": "draining"}]
    assert httpx.get(f"{url}/health/live", timeout=2).status_code == 200

    worker.join(timeout=10)
    assert replies[0].status_code == 200
    assert replies[0].json()["data"] == {"worked": 2.0}
    assert process.wait(timeout=10) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health/live", timeout=1)


def test_work_longer_than_the_grace_period_is_cut_and_the_process_still_exits():
    process, url = _slow_service(grace=0.5, drain_delay=0)
    worker = threading.Thread(
        target=lambda: _swallow(lambda: httpx.get(f"{url}/work/20", timeout=30))
    )
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    assert time.monotonic() - started < 5
    worker.join(timeout=10)


def test_the_monolith_process_drains_and_exits_0_on_sigterm(tmp_path):
    port = free_port()
    process, url = _start(
        ["-m", "infra", "run", "monolith", "--port", str(port)],
        port,
        {"SHOP_DATA_DIR": str(tmp_path)},
    )
    assert httpx.get(f"{url}/api/products", timeout=5).status_code == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


def _swallow(call) -> None:
    with contextlib.suppress(httpx.HTTPError):
        call()


def test_an_idle_keep_alive_connection_outlives_the_gateways_pool():
    """The keep-alive race: a server that closes an idle connection before the proxy in front
    of it stops reusing it turns a POST into a 502. The server keeps it open longer than the
    gateway pools it; checked on a real socket idle past uvicorn's own default (5 s)."""
    from libs.observability.shutdown import KEEP_ALIVE_SECONDS
    from libs.routing.upstream import POOL_KEEP_ALIVE_SECONDS

    assert KEEP_ALIVE_SECONDS > POOL_KEEP_ALIVE_SECONDS
    process, url = _slow_service(grace=5, drain_delay=0.0)
    try:
        limits = httpx.Limits(keepalive_expiry=60)  # the client keeps it: the server decides
        with httpx.Client(base_url=url, timeout=5, limits=limits) as client:
            assert client.get("/health/live").status_code == 200
            time.sleep(6.5)
            # Had the server closed it, the socket would read EOF: has_expired() says so (and
            # httpx would quietly reconnect, so the request alone proves nothing).
            pool = client._transport._pool  # type: ignore[attr-defined]
            [connection] = pool.connections
            assert not connection.has_expired()
            assert client.get("/health/live").status_code == 200
            assert pool.connections == [connection]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
