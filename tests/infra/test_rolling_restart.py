"""A rolling restart of every backend behind the gateway, under the demo's mixed load, gives
clients no error: each process in turn gets SIGTERM (not ready for its drain delay, in-flight
requests finished, exit 0) and starts again on its port, and the gateway, which checks each
backend's readiness, holds that backend's requests until the new process is ready.

Before the gateway checked readiness, one restart of the monolith under 16 workers answered
hundreds of 502 BAD_GATEWAY (issue 15, finding 5)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from infra.demo.client import ShopClient, Tally
from infra.demo.mixed import MixedLoad
from infra.demo.run import isolated_env
from infra.processes import PROCESSES
from infra.settings import SharedSettings, load_settings
from infra.stages import STAGES, Endpoints, StageEngine
from infra.supervisor import Supervisor
from infra.up import start_broker_if_embedded

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

BACKENDS = ("monolith", "member-service", "order-service", "payment-service", "read-model")


async def restart_each_under_load(supervisor: Supervisor, gateway: str) -> tuple[Tally, MixedLoad]:
    tally = Tally()
    client = ShopClient(gateway, tally, timeout=30)
    try:
        listing = await client.call("GET", "/api/products", params={"limit": 100})
        # The demo's load: enough that every restart meets requests in flight, not so much
        # that a busy 2-core machine times out without any restart.
        load = MixedLoad(client, listing.data["items"], workers=6)
        load.start()
        await asyncio.sleep(3)
        for name in BACKENDS:
            before, errors = tally.requests, len(tally.violations) + len(load.violations)
            code = await asyncio.to_thread(supervisor.restart, name)
            assert code == 0, f"{name} exited {code} on SIGTERM"
            await asyncio.sleep(1.5)  # traffic on the new process before the next restart
            seen = len(tally.violations) + len(load.violations) - errors
            print(f"restart of {name}: {tally.requests - before} requests, {seen} errors")
            assert tally.requests > before
        await load.stop()
    finally:
        await client.aclose()
    return tally, load


def test_a_rolling_restart_of_every_backend_under_load_gives_clients_no_error(tmp_path: Path):
    env, ports = isolated_env(tmp_path)
    env["SHOP_DRAIN_DELAY_SECONDS"] = "1"  # > the gateway's 0.25 s health interval
    base = load_settings(SharedSettings)
    settings = SharedSettings(
        data_dir=tmp_path,
        broker_port=int(env["SHOP_BROKER_PORT"]),
        kafka_bootstrap=base.kafka_bootstrap,
    )
    supervisor = Supervisor(env, tmp_path / "logs")
    try:
        start_broker_if_embedded(supervisor, settings)
        supervisor.start_in_order({name: ports[name] for name in PROCESSES})
        urls = {name: child.url for name, child in supervisor.children.items()}
        # The last stage: every backend serves a route of its own.
        engine = StageEngine(Endpoints(urls, base.admin_token), say=lambda _: None, ramps=False)
        try:
            assert engine.apply(len(STAGES) - 1, force=True) == len(STAGES) - 1
        finally:
            engine.close()
        tally, load = asyncio.run(restart_each_under_load(supervisor, urls["gateway"]))
    finally:
        codes = supervisor.stop()
    assert tally.violations == [], tally.violations[:10]
    assert load.violations == [], load.violations[:10]
    assert not [status for status in tally.by_status if status >= 500]
    for name in BACKENDS:  # each one answered the clients, before and after its restart
        assert tally.served_by[name] > 0, tally.served_by
    assert all(code == 0 for code in codes.values()), codes
