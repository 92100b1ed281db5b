"""Shadow mode: safe requests mirrored to the candidate, compared, never seen by the caller."""

from __future__ import annotations

import time

import httpx

from gateway.shadow import differences
from tests.gateway.conftest import RunningGateway

# The test backends name themselves in every answer and echo the deadline they were given.
VOLATILE = ["data.backend", "data.deadline_ms"]


def test_volatile_fields_matching_an_ignore_pattern_are_not_differences():
    a = b'{"data": {"items": [{"id": 1, "updated_at": "t1"}]}, "meta": {"request_id": "x"}}'
    b = b'{"data": {"items": [{"id": 1, "updated_at": "t2"}]}, "meta": {"request_id": "y"}}'
    assert differences(a, b, ["meta.request_id", "*.updated_at"]) == []


def test_a_changed_missing_or_extra_field_is_a_difference():
    a = b'{"data": {"name": "Kim", "points": 10}}'
    b = b'{"data": {"name": "Kim", "grade": "gold", "points": 12}}'
    assert differences(a, b, []) == [
        {"path": "data.grade", "primary": "<missing>", "candidate": "gold"},
        {"path": "data.points", "primary": 10, "candidate": 12},
    ]


def test_bodies_that_are_not_json_are_compared_as_bytes():
    assert differences(b"abc", b"abc", []) == []
    assert differences(b"abc", b"abd", [])[0]["path"] == "<body>"


def shadow_members(gateway: RunningGateway, ignore: list[str]) -> None:
    with gateway.admin() as admin:
        routes = admin.get("/admin/routes").json()["data"]["routes"]
        for r in routes:
            r.pop("share_percent")
        routes[0]["shadow"] = {"backend": "member-service", "percent": 100, "ignore": ignore}
        assert admin.put("/admin/routes", json={"routes": routes}).status_code == 200


def shadow_status(gateway: RunningGateway, expected: int) -> dict:
    deadline = time.monotonic() + 10
    with gateway.admin() as admin:
        while True:
            status = admin.get("/admin/shadow").json()["data"]
            counts = status["counts"].get("members", {})
            if sum(counts.values()) >= expected or time.monotonic() > deadline:
                return status
            time.sleep(0.05)


def test_mirrored_requests_that_agree_count_as_matches(gateway: RunningGateway):
    shadow_members(gateway, ignore=VOLATILE)
    for m in range(10):
        answer = httpx.get(f"{gateway.url}/api/members/{m}")
        assert answer.headers["x-served-by"] == "monolith"
    status = shadow_status(gateway, 10)
    assert status["counts"]["members"] == {"match": 10, "mismatch": 0, "error": 0, "dropped": 0}


def test_a_candidate_answering_differently_is_counted_and_kept_without_touching_the_caller(
    gateway: RunningGateway, backends
):
    backends["member-service"].behaviour.extra = {"points": 99}
    shadow_members(gateway, ignore=VOLATILE)
    answers = [httpx.get(f"{gateway.url}/api/members/{m}") for m in range(5)]
    assert all("points" not in a.json()["data"] for a in answers)
    status = shadow_status(gateway, 5)
    assert status["counts"]["members"]["mismatch"] == 5
    latest = status["latest_mismatches"][0]
    assert latest["primary"] == {"backend": "monolith", "status": 200}
    assert latest["differences"] == [
        {"path": "data.points", "primary": "<missing>", "candidate": 99}
    ]
    text = httpx.get(f"{gateway.url}/metrics").text
    assert 'shop_gateway_shadow_comparisons_total{outcome="mismatch",route="members"} 5.0' in text


def test_only_safe_requests_are_mirrored(gateway: RunningGateway, backends):
    shadow_members(gateway, ignore=VOLATILE)
    httpx.post(f"{gateway.url}/api/members", content=b"{}")
    httpx.delete(f"{gateway.url}/api/members/1")
    time.sleep(0.3)
    assert backends["member-service"].behaviour.seen == 0
