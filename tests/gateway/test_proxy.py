"""The proxy: the backend's answer passes through, the gateway's own failures are envelopes."""

from __future__ import annotations

import asyncio
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from libs.response import is_valid_envelope
from tests.gateway.conftest import (
    Backend,
    Behaviour,
    RunningGateway,
    gateway_settings,
    serving,
)


def test_a_request_reaches_the_backend_and_its_answer_passes_through(gateway: RunningGateway):
    answer = httpx.get(f"{gateway.url}/api/members/7?x=1", headers={"X-Request-Id": "abc-1"})
    assert answer.status_code == 200
    assert answer.headers["x-served-by"] == "monolith"
    assert answer.headers["x-routed-to"] == "monolith"
    assert answer.headers["x-request-id"] == "abc-1"
    body = answer.json()
    assert body["meta"]["request_id"] == "abc-1"
    assert body["data"]["path"] == "/api/members/7"
    assert 0 < int(body["data"]["deadline_ms"]) <= 6000


def test_the_deadline_passed_on_never_exceeds_the_callers(gateway: RunningGateway):
    answer = httpx.get(f"{gateway.url}/api/members/7", headers={"X-Shop-Deadline-Ms": "1500"})
    assert int(answer.json()["data"]["deadline_ms"]) <= 1500


def test_a_request_body_is_forwarded(gateway: RunningGateway):
    answer = httpx.post(f"{gateway.url}/api/orders", content=b'{"sku": "A"}')
    assert answer.json()["data"]["body"] == '{"sku": "A"}'


def test_a_large_answer_is_streamed_through_whole(gateway: RunningGateway):
    answer = httpx.get(f"{gateway.url}/api/members/big/{4 * 1024 * 1024}", timeout=20)
    assert answer.status_code == 200
    assert len(answer.content) == 4 * 1024 * 1024


def test_an_unknown_prefix_is_a_404_envelope_from_the_gateway(gateway: RunningGateway):
    answer = httpx.get(f"{gateway.url}/api/nowhere")
    assert answer.status_code == 404
    assert answer.headers["x-served-by"] == "gateway"
    assert is_valid_envelope(answer.json())


def test_a_backend_that_is_down_gets_a_502_envelope_quickly(gateway: RunningGateway):
    # No process listens on order-service's port (tests/gateway/conftest.py).
    gateway.set_weights("orders", {"monolith": 0, "order-service": 1})
    started = time.monotonic()
    answer = httpx.get(f"{gateway.url}/api/orders/1", timeout=10)
    assert answer.status_code == 502
    assert answer.headers["x-served-by"] == "gateway"
    assert answer.headers["x-routed-to"] == "order-service"
    body = answer.json()
    assert is_valid_envelope(body) and body["error"]["code"] == "BAD_GATEWAY"
    assert time.monotonic() - started < 3


def short_read_timeout_on_members(gateway: RunningGateway, read: float) -> None:
    with gateway.admin() as admin:
        routes = admin.get("/admin/routes").json()["data"]["routes"]
        for r in routes:
            r.pop("share_percent")
            if r["name"] == "members":
                r["timeouts"] = {"connect": 0.5, "read": read}
        assert admin.put("/admin/routes", json={"routes": routes}).status_code == 200


def test_a_slow_backend_answers_its_own_504_before_the_gateway_gives_up(
    gateway: RunningGateway, backends
):
    backends["monolith"].behaviour.delay = 2.0
    short_read_timeout_on_members(gateway, 0.5)
    answer = httpx.get(f"{gateway.url}/api/members/1", timeout=10)
    assert answer.status_code == 504
    assert answer.headers["x-served-by"] == "monolith"
    assert answer.json()["error"]["code"] == "TIMEOUT"


async def hanging_backend(scope, receive, send):
    """Ignores every deadline: only the gateway's read timeout can end the wait."""
    if scope["type"] == "http":
        await asyncio.sleep(3)


def test_a_backend_that_ignores_deadlines_gets_a_504_envelope_from_the_gateway(tmp_path, backends):
    with serving(hanging_backend) as hanging_url:
        backends = {**backends, "monolith": Backend("monolith", hanging_url, Behaviour())}
        settings = gateway_settings(tmp_path, backends)
        with serving(create_app(settings)) as url:
            gateway = RunningGateway(url, settings)
            short_read_timeout_on_members(gateway, 0.3)
            started = time.monotonic()
            answer = httpx.get(f"{url}/api/members/1", timeout=10)
            assert time.monotonic() - started < 1.5
    assert answer.status_code == 504
    assert answer.headers["x-served-by"] == "gateway"
    assert answer.json()["error"]["code"] == "UPSTREAM_TIMEOUT"


def test_per_backend_metrics_and_weights_are_exported(gateway: RunningGateway):
    gateway.set_weights("members", {"monolith": 9, "member-service": 1})
    backend = httpx.get(f"{gateway.url}/api/members/1").headers["x-routed-to"]
    text = httpx.get(f"{gateway.url}/metrics").text
    requests = {"route": "members", "backend": backend, "status": "200"}
    assert sample(text, "shop_gateway_requests_total", requests) == 1.0
    weight = {"route": "members", "backend": "member-service"}
    assert sample(text, "shop_gateway_route_weight", weight) == 1.0
    latency = {"route": "members", "backend": backend, "le": "+Inf"}
    assert sample(text, "shop_gateway_request_duration_seconds_bucket", latency) == 1.0


def sample(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None
