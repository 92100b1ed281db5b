"""What `create_service_app` gives every process, checked over a real socket."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi import FastAPI, Request

from libs.errors import Conflict
from libs.response import ok
from libs.service import ServiceOptions, create_service_app
from libs.timeouts import DEADLINE_HEADER, CallTimeouts, make_http_client
from tests.support.servers import serving


def _app(limit: float = 0.5):
    app = create_service_app(ServiceOptions("probe", server_limit_seconds=limit))

    @app.get("/sleep/{seconds}")
    async def sleep(seconds: float):
        await asyncio.sleep(seconds)
        return ok({"slept": seconds})

    @app.get("/echo-headers")
    async def echo(request: Request):
        return ok(dict(request.headers))

    @app.get("/conflict")
    def conflict():
        raise Conflict("ORDER_PAID", "The order is paid.")

    @app.get("/crash")
    def crash():
        raise RuntimeError("boom")

    return app


@pytest.fixture(scope="module")
def probe():
    with serving(_app()) as url, httpx.Client(base_url=url, timeout=5) as http:
        yield http


def test_a_request_over_the_server_limit_gets_a_504_envelope_not_a_dropped_connection(probe):
    reply = probe.get("/sleep/2")
    assert reply.status_code == 504
    assert reply.json()["error"]["code"] == "TIMEOUT"
    assert reply.headers["X-Served-By"] == "probe"


def test_a_shorter_propagated_deadline_shrinks_the_server_limit(probe):
    assert probe.get("/sleep/0.2").status_code == 200
    reply = probe.get("/sleep/0.2", headers={DEADLINE_HEADER: "50"})
    assert reply.status_code == 504
    assert reply.json()["error"]["details"] == [{"limit_seconds": 0.05}]


def test_a_domain_error_becomes_the_envelope_of_its_kind(probe):
    reply = probe.get("/conflict")
    assert reply.status_code == 409
    assert reply.json()["error"] == {
        "code": "ORDER_PAID",
        "message": "The order is paid.",
        "details": [],
    }


def test_a_crash_is_a_500_envelope(probe):
    reply = probe.get("/crash")
    assert reply.status_code == 500
    assert reply.json()["error"]["code"] == "INTERNAL_ERROR"


def test_a_given_request_id_is_kept_and_a_missing_one_is_made(probe):
    assert (
        probe.get("/health/live", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"]
        == "abc-123"
    )
    made = probe.get("/health/live").headers["X-Request-Id"]
    assert len(made) == 32
    unsafe = probe.get("/health/live", headers={"X-Request-Id": "x" * 500})
    assert unsafe.headers["X-Request-Id"] != "x" * 500


def test_metrics_count_requests_by_route_template_not_raw_path(probe):
    probe.get("/sleep/0.01")
    probe.get("/sleep/0.02")
    probe.get("/no/such/path")
    text = probe.get("/metrics").text
    assert 'route="/sleep/{seconds}",service="probe",status="200"' in text
    assert 'route="<unmatched>"' in text
    assert "/sleep/0.01" not in text
    assert "shop_http_request_duration_seconds_bucket" in text
    assert "shop_http_requests_in_flight" in text


def test_health_is_live_and_ready_after_start(probe):
    assert probe.get("/health/live").json()["data"] == {"status": "live"}
    assert probe.get("/health/ready").json()["data"]["status"] == "ready"


def _ready_gauge(http: httpx.Client) -> str:
    return next(
        line for line in http.get("/metrics").text.splitlines() if line.startswith("shop_ready ")
    )


def test_shop_ready_on_metrics_says_what_health_ready_answers():
    app = _app()
    failing = {"now": False}

    def database() -> None:
        if failing["now"]:
            raise ConnectionError("the DB is away")

    app.state.readiness.add_check("database", database)
    with serving(app) as url, httpx.Client(base_url=url, timeout=5) as http:
        assert _ready_gauge(http) == "shop_ready 1.0"
        failing["now"] = True  # asked again at this scrape, not remembered from the last
        assert http.get("/health/ready").status_code == 503
        assert _ready_gauge(http) == "shop_ready 0.0"
        failing["now"] = False
        app.state.readiness.mark_draining()
        assert http.get("/health/ready").json()["error"]["code"] == "NOT_READY"
        assert _ready_gauge(http) == "shop_ready 0.0"


async def test_the_outbound_client_carries_request_id_and_remaining_deadline():
    from libs import context

    with serving(_app()) as url:
        client = make_http_client(url, CallTimeouts(connect=1, read=2))
        rid = context.request_id.set("trace-1")
        deadline = context.deadline.set(time.monotonic() + 0.8)
        try:
            headers = (await client.get("/echo-headers")).json()["data"]
        finally:
            context.request_id.reset(rid)
            context.deadline.reset(deadline)
            await client.aclose()
    assert headers["x-request-id"] == "trace-1"
    assert 0 < int(headers[DEADLINE_HEADER.lower()]) <= 800


async def test_the_outbound_client_gives_up_at_the_propagated_deadline():
    from libs import context

    deaf = FastAPI()  # a callee that ignores deadlines: the caller must still stop waiting

    @deaf.get("/sleep")
    async def sleep():
        await asyncio.sleep(3)

    with serving(deaf) as url:
        client = make_http_client(url, CallTimeouts(connect=1, read=6))
        token = context.deadline.set(time.monotonic() + 0.3)
        started = time.monotonic()
        try:
            with pytest.raises(httpx.ReadTimeout):
                await client.get("/sleep")
            waited = time.monotonic() - started
        finally:
            context.deadline.reset(token)
            await client.aclose()
    assert waited < 1
