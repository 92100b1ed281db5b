"""`GET /admin/migration` against the real monolith, member service and gateway on real sockets:
it names the stage the stage engine names and the next one's steps, reads the member
extraction's data mode and sync metrics, the outboxes and consumer groups, and shows the
processes that do not answer (order, payment) as down instead of failing; the read model's
generation and freshness histogram."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from gateway.app import create_app as create_gateway
from gateway.migration import SERIES, RecentWindow, keep_series, quantile
from infra.processes import PROCESSES
from infra.settings import DEV_ADMIN_TOKEN, ReadModelSettings
from infra.stages import STAGES, Endpoints, StageEngine
from infra.supervisor import free_ports
from monolith.entrypoints.app import create_app as create_monolith
from read_model.entrypoints.app import create_app as create_read_model
from services.member.entrypoints.app import create_app as create_member_service
from tests.support.brokers import NO_BROKER
from tests.support.servers import serving
from tests.support.settings import Environment

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
RUNNING = ("gateway", "monolith", "member-service", "read-model")


@pytest.fixture
def system(tmp_path) -> Iterator[tuple[str, StageEngine]]:
    # Distinct at once: two free_port() calls in a row may name the same port.
    names = [*PROCESSES, "grpc"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    # Every process has an address; the order and payment services do not listen on theirs.
    urls = {name: f"http://127.0.0.1:{ports[name]}" for name in PROCESSES}
    settings = Environment(
        data_dir=tmp_path,
        gateway_port=ports["gateway"],
        gateway_backends={n: u for n, u in urls.items() if n != "gateway"},
        monolith_port=ports["monolith"],
        monolith_member_grpc=f"127.0.0.1:{ports['grpc']}",
        port=ports["member-service"],
        grpc_port=ports["grpc"],
        sync_interval=0.05,
        kafka_bootstrap=NO_BROKER,  # the relays keep their events, the groups wait
    )
    with ExitStack() as stack:
        stack.enter_context(serving(create_monolith(settings), ports["monolith"]))
        stack.enter_context(serving(create_member_service(settings), ports["member-service"]))
        views = ReadModelSettings(
            data_dir=tmp_path,
            kafka_bootstrap=NO_BROKER,
            redis_url=None,
            admin_token=DEV_ADMIN_TOKEN,
        )
        stack.enter_context(serving(create_read_model(views), ports["read-model"]))
        gateway = stack.enter_context(serving(create_gateway(settings), ports["gateway"]))
        engine = StageEngine(Endpoints(urls, DEV_ADMIN_TOKEN), say=lambda _: None)
        stack.callback(engine.close)
        yield gateway, engine


def migration(gateway: str) -> dict:
    answer = httpx.get(f"{gateway}/admin/migration", headers=ADMIN, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def fresh(gateway: str, after: float) -> dict:
    """The first answer gathered after `after` (the endpoint caches for a second)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        data = migration(gateway)
        if data["at"] > after:
            return data
        time.sleep(0.2)
    raise AssertionError("no new gather in 5 s")


def test_the_endpoint_names_the_stage_the_next_step_and_who_is_down(system):
    gateway, engine = system
    data = migration(gateway)
    assert data["stage"]["current"] == 0 and data["stage"]["name"] == "monolith"
    following = data["stage"]["next"]
    assert (following["number"], following["name"]) == (1, STAGES[1].name)
    assert following["steps"] == [step.describe() for step in STAGES[1].steps]
    assert following["needs"] == list(STAGES[1].needs) and following["missing"] == []
    states = {p["name"]: p["state"] for p in data["processes"]}
    assert {name: states[name] for name in RUNNING} == dict.fromkeys(RUNNING, "ready")
    assert {states[n] for n in PROCESSES if n not in RUNNING} == {"down"}
    by_name = {e["name"]: e for e in data["extractions"]}
    assert by_name["orders"]["up"] is False and by_name["orders"]["mode"] is None
    read_model = data["read_model"]
    assert read_model["up"] is True and read_model["generation"] == "g1"
    assert read_model["freshness"]["lifetime"] == {
        "count": 0.0, "p50_seconds": None, "p99_seconds": None,
    }  # fmt: skip
    publishers = {o["process"] for o in data["events"]["outboxes"]}
    assert {"monolith", "member-service"} <= publishers
    # No broker: no group has seen a partition's watermark yet (the slow console test runs one).
    assert all(c["lag"] is None for c in data["events"]["consumers"])

    assert engine.apply(1) == 1
    data = fresh(gateway, data["at"])
    assert data["stage"]["current"] == 1
    assert data["stage"]["next"]["name"] == STAGES[2].name
    members = {e["name"]: e for e in data["extractions"]}["members"]
    assert (members["mode"], members["phase"], members["up"]) == ("shared", "shared", True)
    assert members["sync"]["lag_seconds"] is not None and members["sync"]["pending"] is not None


def test_the_endpoint_needs_the_admin_token_and_caches_for_a_second(system):
    gateway, _ = system
    refused = httpx.get(f"{gateway}/admin/migration")
    assert refused.status_code == 401 and refused.json()["error"]["code"]
    first, second = migration(gateway), migration(gateway)
    assert first["at"] == second["at"]  # the second tab got the first one's gather


def test_freshness_quantiles_are_read_from_the_buckets_as_prometheus_does():
    inf = float("inf")
    buckets = {0.005: 0.0, 0.01: 10.0, 0.025: 20.0, inf: 20.0}
    assert quantile(buckets, 0.5) == pytest.approx(0.01)
    assert quantile(buckets, 0.99) == pytest.approx(0.01 + 0.015 * 9.8 / 10)
    assert quantile({0.01: 0.0, inf: 4.0}, 0.5) == 0.01  # in +Inf: the highest finite bound
    assert quantile({0.01: 0.0, inf: 0.0}, 0.5) is None
    window = RecentWindow(seconds=60)
    assert window.add({0.01: 10.0, inf: 10.0}) == {0.01: 0.0, inf: 0.0}
    assert window.add({0.01: 12.0, inf: 15.0}) == {0.01: 2.0, inf: 5.0}
    assert window.add({0.01: 1.0, inf: 1.0}) == {0.01: 0.0, inf: 0.0}  # restarted: counts anew


def test_only_the_series_the_console_shows_are_parsed_from_metrics():
    exposition = """# HELP shop_outbox_backlog Committed outbox events not yet published.
# TYPE shop_outbox_backlog gauge
shop_outbox_backlog{process="monolith"} 3.0
# HELP shop_http_requests_total Requests.
# TYPE shop_http_requests_total counter
shop_http_requests_total{route="/api/members"} 120.0
shop_read_model_freshness_seconds_bucket{le="0.1"} 4.0
# EOF
"""
    kept = keep_series(exposition, SERIES).splitlines()
    assert kept == [*exposition.splitlines()[:3], exposition.splitlines()[6]]


def test_a_route_removed_by_hand_leaves_the_system_at_no_stage_not_the_endpoint_failing(system):
    gateway, _ = system
    with httpx.Client(base_url=gateway, headers=ADMIN, timeout=5) as admin:
        table = admin.get("/admin/routes").json()["data"]
        routes = [r for r in table["routes"] if r["name"] != "views"]
        for route in routes:
            route.pop("share_percent")
        assert admin.put("/admin/routes", json={"routes": routes}).status_code == 200
    stage = migration(gateway)["stage"]
    assert stage["current"] is None and stage["closest"]["number"] == 0
    assert "route views: expected" in " ".join(stage["differences"])
