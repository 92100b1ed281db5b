"""The metric-gated ramp: a failing candidate rolls back by itself, a healthy one reaches 100%,
and no traffic is inconclusive rather than a failure."""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import pytest

from gateway.app import create_app
from gateway.ramp import RampPlan, judge, parse_plan
from gateway.stats import Counts
from libs.routing import InvalidRouteTable, Route
from tests.gateway.conftest import RunningGateway, gateway_settings, serving

PLAN = RampPlan("members", "member-service", "monolith", (10, 50, 100), 1.0, 50, 0.01, 1.5, 25, 3)
FAST_RAMP = {
    "route": "members",
    "candidate": "member-service",
    "steps": [10, 50, 100],
    "interval_seconds": 0.6,
    "min_requests": 20,
    "max_wait_intervals": 5,
}


def counts(requests: int, errors: int = 0, seconds: float = 0.002) -> Counts:
    c = Counts()
    for i in range(requests):
        c.add(seconds, i < errors)
    return c


def test_too_few_candidate_requests_are_inconclusive_not_a_failure():
    assert judge(PLAN, counts(10, errors=10), counts(1000)).outcome == "inconclusive"


def test_a_candidate_failing_a_few_percent_more_than_the_baseline_is_a_breach():
    verdict = judge(PLAN, counts(200, errors=8), counts(2000, errors=2))
    assert verdict.outcome == "breach" and "4.0%" in verdict.reason


def test_a_p99_of_fewer_than_a_hundred_requests_is_not_judged():
    verdict = judge(PLAN, counts(60, seconds=0.2), counts(2000))
    assert verdict.outcome == "inconclusive" and "p99 needs 100" in verdict.reason


def test_a_candidate_much_slower_at_p99_is_a_breach():
    assert judge(PLAN, counts(200, seconds=0.2), counts(2000)).outcome == "breach"


def test_a_candidate_like_the_baseline_passes():
    assert judge(PLAN, counts(200, errors=1), counts(2000, errors=5)).outcome == "pass"


def test_a_ramp_plan_names_its_problems():
    route = Route("members", "/api/members", (("monolith", 100), ("member-service", 0)))
    with pytest.raises(InvalidRouteTable) as refused:
        parse_plan({"candidate": "ghost", "steps": [50, 10], "bogus": 1}, route, {})
    fields = {d["field"] for d in refused.value.details}
    assert {"candidate", "steps", "bogus", "interval_seconds"} <= fields


def test_the_baseline_defaults_to_the_heaviest_other_backend():
    route = Route("members", "/api/members", (("monolith", 100), ("member-service", 0)))
    defaults = {k: v for k, v in FAST_RAMP.items() if k not in ("route", "candidate")}
    plan = parse_plan(
        {"candidate": "member-service"},
        route,
        defaults | {"max_error_delta": 0.01, "p99_ratio": 1.5, "p99_slack_ms": 25.0},
    )
    assert plan.baseline == "monolith"


@contextlib.asynccontextmanager
async def member_traffic(gateway: RunningGateway, members: int = 400):
    """Members browsing continuously while the ramp runs."""
    tokens = [gateway.member_token(m) for m in range(1, members + 1)]
    stop = asyncio.Event()

    async def browse(session: aiohttp.ClientSession, offset: int) -> None:
        i = offset
        while not stop.is_set():
            headers = {"Authorization": f"Bearer {tokens[i % members]}"}
            async with session.get(f"{gateway.url}/api/members/me", headers=headers) as answer:
                await answer.read()
            i += 7

    async with aiohttp.ClientSession() as session:
        workers = [asyncio.create_task(browse(session, n)) for n in range(8)]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*workers, return_exceptions=True)


async def run_ramp(gateway: RunningGateway, plan: dict, limit: float = 30) -> dict:
    headers = {"Authorization": f"Bearer {admin_token(gateway)}"}
    async with aiohttp.ClientSession(gateway.url, headers=headers) as admin:
        async with admin.post("/admin/ramps", json=plan) as started:
            assert started.status == 202, await started.text()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            async with admin.get(f"/admin/ramps/{plan['route']}") as answer:
                ramp = (await answer.json())["data"]
            if ramp["state"] != "running":
                return ramp
            await asyncio.sleep(0.2)
    raise AssertionError(f"the ramp did not finish within {limit}s: {ramp}")


def admin_token(gateway: RunningGateway) -> str:
    return gateway.settings.admin_token


async def test_a_healthy_candidate_is_ramped_to_one_hundred_percent(gateway: RunningGateway):
    async with member_traffic(gateway):
        ramp = await run_ramp(gateway, FAST_RAMP)
    assert ramp["state"] == "completed", ramp
    assert ramp["percent"] == 100
    assert [h["percent"] for h in ramp["history"] if h["outcome"] == "pass"] == [10, 50, 100]
    with gateway.admin() as admin:
        members = admin.get("/admin/routes").json()["data"]["routes"][0]
        metrics = admin.get("/metrics").text
    assert members["weights"] == {"monolith": 0, "member-service": 100}
    assert 'shop_gateway_ramp_state{route="members",state="completed"} 1.0' in metrics


async def test_a_candidate_failing_a_few_percent_is_rolled_back_by_itself(
    gateway: RunningGateway, backends
):
    backends["member-service"].behaviour.fail_every = 20  # 5% of its requests fail
    async with member_traffic(gateway):
        ramp = await run_ramp(gateway, FAST_RAMP)
    assert ramp["state"] == "rolled_back", ramp
    assert ramp["percent"] == 0
    assert ramp["reason"].startswith("member-service failed"), ramp["reason"]
    assert any(h["outcome"] == "breach" for h in ramp["history"])
    with gateway.admin() as admin:
        members = admin.get("/admin/routes").json()["data"]["routes"][0]
        changes = admin.get("/admin/changes").json()["data"]["changes"]
    assert members["weights"] == {"monolith": 100, "member-service": 0}
    assert changes[0]["actor"] == "ramp" and "failed" in changes[0]["reason"]


async def test_a_ramp_without_traffic_stalls_instead_of_failing(gateway: RunningGateway):
    plan = {**FAST_RAMP, "interval_seconds": 0.2, "max_wait_intervals": 2}
    ramp = await run_ramp(gateway, plan)
    assert ramp["state"] == "stalled"
    assert ramp["percent"] == 10
    assert all(h["outcome"] in ("inconclusive", "note") for h in ramp["history"])


async def test_a_second_ramp_on_the_same_route_is_refused_while_one_runs(gateway: RunningGateway):
    headers = {"Authorization": f"Bearer {admin_token(gateway)}"}
    plan = {**FAST_RAMP, "interval_seconds": 5}
    async with aiohttp.ClientSession(gateway.url, headers=headers) as admin:
        async with admin.post("/admin/ramps", json=plan) as first:
            assert first.status == 202
        async with admin.post("/admin/ramps", json=plan) as second:
            assert second.status == 409
            assert (await second.json())["error"]["code"] == "RAMP_RUNNING"
        async with admin.put("/admin/routes", json={"routes": []}) as edit:
            assert edit.status == 422
        async with admin.post("/admin/ramps/members/abort") as aborted:
            body = (await aborted.json())["data"]
    assert body["state"] == "aborted" and body["percent"] == 0


def test_a_running_ramp_resumes_its_step_after_a_gateway_restart(tmp_path, backends):
    settings = gateway_settings(tmp_path, backends)
    plan = {**FAST_RAMP, "steps": [30, 100], "interval_seconds": 30}
    with serving(create_app(settings)) as url:
        gateway = RunningGateway(url, settings)
        with gateway.admin() as admin:
            assert admin.post("/admin/ramps", json=plan).status_code == 202
    with serving(create_app(settings)) as url, RunningGateway(url, settings).admin() as admin:
        ramp = admin.get("/admin/ramps/members").json()["data"]
        weights = admin.get("/admin/routes").json()["data"]["routes"][0]["weights"]
    assert ramp["state"] == "running" and ramp["percent"] == 30
    assert ramp["history"][-1]["reason"] == "resumed after a gateway restart"
    assert weights == {"monolith": 70, "member-service": 30}
