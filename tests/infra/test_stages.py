"""The stage engine against the real processes (gateway, monolith, member service) on real
sockets: it names the stage the system is at, moves one stage at a time forward and back,
refuses to skip a stage unless forced, and undoes a move a process refuses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
import sqlalchemy as sa

from gateway.app import create_app as create_gateway
from infra.settings import DEV_ADMIN_TOKEN
from infra.stages import (
    STAGES,
    Endpoints,
    RampOptions,
    StageEngine,
    StageRefused,
    Weights,
    configuration,
)
from infra.supervisor import free_port
from monolith.entrypoints.app import create_app as create_monolith
from services.member.entrypoints.app import create_app as create_member_service
from tests.support.servers import serving
from tests.support.settings import Environment

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}


@pytest.fixture
def system(tmp_path) -> Iterator[tuple[StageEngine, Environment]]:
    ports = {name: free_port() for name in ("gateway", "monolith", "member-service", "grpc")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items() if name != "grpc"}
    settings = Environment(
        data_dir=tmp_path,
        gateway_port=ports["gateway"],
        gateway_backends={n: u for n, u in urls.items() if n != "gateway"},
        monolith_port=ports["monolith"],
        monolith_member_grpc=f"127.0.0.1:{ports['grpc']}",
        port=ports["member-service"],
        grpc_port=ports["grpc"],
        sync_interval=0.05,
    )
    with ExitStack() as stack:
        # The monolith first: its migrations install the change capture the service reads.
        stack.enter_context(serving(create_monolith(settings), ports["monolith"]))
        stack.enter_context(serving(create_member_service(settings), ports["member-service"]))
        stack.enter_context(serving(create_gateway(settings), ports["gateway"]))
        lines: list[str] = []
        engine = StageEngine(Endpoints(urls, DEV_ADMIN_TOKEN), say=lines.append)
        engine.lines = lines  # type: ignore[attr-defined]
        yield engine, settings
        engine.close()


def at_stage_2(engine: StageEngine, settings: Environment) -> None:
    """Stage 2's ramp needs live traffic; here its end state is set directly."""
    engine.apply(1)
    gateway = f"{engine.endpoints.urls['gateway']}/admin/routes"
    table = httpx.get(gateway, headers=ADMIN).json()["data"]
    for route in table["routes"]:
        route.pop("share_percent", None)
        if route["name"] == "members":
            route["weights"] = {"monolith": 0, "member-service": 100}
    body = {"routes": table["routes"], "version": table["version"], "reason": "test"}
    assert httpx.put(gateway, json=body, headers=ADMIN).status_code == 200
    assert engine.current() == 2


def test_every_stage_declares_what_it_sets_and_the_whole_configuration_grows():
    assert [s.number for s in STAGES] == list(range(10))
    for number in range(1, len(STAGES)):
        assert set(configuration(number - 1)) <= set(configuration(number))
        assert STAGES[number].steps, f"stage {number} changes nothing"


def test_orders_and_payments_take_each_step_of_the_commerce_stages_together():
    """One wave: stages 5-8 move both services, orders first in each step."""
    assert [STAGES[n].extractions for n in range(5, 9)] == [("orders", "payments")] * 4
    shared = [step.describe() for step in STAGES[5].steps]
    assert shared == [
        "order-service data mode: shared",
        "gateway route orders: monolith 90% : order-service 10%",
        "payment-service data mode: shared",
        "gateway route payments: monolith 90% : payment-service 10%",
    ]
    assert [step.key for step in STAGES[6].steps] == [("route", "orders"), ("route", "payments")]
    dual = [step.describe() for step in STAGES[7].steps]
    assert dual == [
        "monolith feature orders: read-only",
        "order-service data mode: dual",
        "monolith feature payments: read-only",
        "payment-service data mode: dual",
    ]
    assert STAGES[8].needs == (
        "gateway", "monolith", "member-service", "order-service", "payment-service",
    )  # fmt: skip


def test_the_engine_names_the_stage_and_refuses_to_skip_one(system):
    engine, _ = system
    assert engine.current() == 0
    with pytest.raises(StageRefused, match="skips 1 stage"):
        engine.apply(2)
    assert engine.current() == 0  # nothing moved
    assert engine.apply(1) == 1
    assert engine.current() == 1
    assert engine.apply(0) == 0
    assert engine.current() == 0


def test_dual_and_single_write_and_back_again(system):
    engine, settings = system
    at_stage_2(engine, settings)
    assert engine.apply(3) == 3
    monolith = engine.endpoints.urls["monolith"]
    features = httpx.get(f"{monolith}/admin/features", headers=ADMIN).json()["data"]["features"]
    assert features.items() >= {"members": "read-only", "member_points": "member-service"}.items()
    assert engine.apply(4) == 4
    moved = httpx.post(f"{monolith}/api/members", json={})
    assert moved.status_code == 410 and moved.json()["error"]["code"] == "FEATURE_MOVED"
    # The rollback path, one stage at a time: single -> dual -> shared.
    assert engine.apply(2, force=True) == 2
    features = httpx.get(f"{monolith}/admin/features", headers=ADMIN).json()["data"]["features"]
    assert features.items() >= {"members": "serving", "member_points": "local"}.items()


def test_drift_blocks_single_write_and_the_steps_before_it_are_undone(system):
    engine, settings = system
    at_stage_2(engine, settings)
    signup = {"email": "drift@example.com", "password": "password-123", "name": "Drift"}
    gateway = engine.endpoints.urls["gateway"]
    assert httpx.post(f"{gateway}/api/members", json=signup).status_code == 201
    assert engine.apply(3) == 3
    member_db = sa.create_engine(settings.db)
    with member_db.begin() as conn:  # a write that bypassed the dual writer
        conn.execute(
            sa.text("UPDATE members SET name = 'Drifted' WHERE email = :e"), {"e": signup["email"]}
        )
    member_db.dispose()

    with pytest.raises(StageRefused, match="DRIFT_BLOCKS_CUTOVER") as refused:
        engine.apply(4)
    assert "back at stage 3" in str(refused.value)
    assert engine.current() == 3  # the monolith's member routes are read-only again
    assert any("back  monolith feature members: read-only" in line for line in engine.lines)


class RecordingAdmin:
    """The gateway's admin API as a step sees it, recorded: enough for a unit test of how a
    ramp is planned (the stage walk above runs it against the real gateway)."""

    def __init__(self, live: dict[str, int]) -> None:
        self.ramp, self.calls = RampOptions(), []
        self.table = {"version": 1, "routes": [{"name": "orders", "weights": live}]}

    def call(self, process: str, method: str, path: str, body=None):
        self.calls.append((process, method, path, body))
        if method == "GET":
            return {"state": "completed", "history": []}
        return {}

    def route_table(self):
        return self.table

    def put_route_table(self, table, reason: str):
        self.calls.append(("gateway", "PUT", "/admin/routes", table))

    def say(self, line: str) -> None:
        pass


def test_a_ramp_takes_the_share_from_the_backend_that_carries_the_most_of_it_now():
    """Three backends on one route: the ramp's baseline is the one with the most live weight,
    not whichever the step happens to list first."""
    admin = RecordingAdmin({"monolith": 20, "order-service": 80, "canary": 0})
    step = Weights("orders", {"monolith": 0, "order-service": 0, "canary": 100}, ramp=(50, 100))
    step.apply(admin, forward=True)
    (plan,) = [body for _, _, path, body in admin.calls if path == "/admin/ramps"]
    assert (plan["candidate"], plan["baseline"]) == ("canary", "order-service")
    assert plan["steps"] == [50, 100]
