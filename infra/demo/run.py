"""Orchestrates the demo: fresh data dir, every process up, the customer journey and the
concurrent load of stage 0, the walk through every stage under continuous load, the
invariants (the read model's views against the owners among them), shutdown."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from infra.demo import report
from infra.demo.client import ShopClient, Tally
from infra.demo.journey import Journey
from infra.demo.load import LoadResult, run_load
from infra.demo.snapshot import owning_dbs, snapshot
from infra.demo.views import freshness, views_match_owners
from infra.demo.walk import STAGE_SECONDS, Walk, events_settle, table_lines, walk_stages
from infra.extractions import EXTRACTIONS
from infra.processes import PROCESSES, READ_MODEL
from infra.settings import SharedSettings, load_settings
from infra.stages import STAGES, Endpoints
from infra.supervisor import Supervisor, free_ports
from infra.up import owns, start_broker_if_embedded
from libs.db import make_engine
from monolith import invariants

REBUILD_SECONDS = 120.0


@dataclass
class Drive:
    journey: Journey
    load: LoadResult
    tally: Tally
    load_seconds: float
    stock_before: dict[int, int] = field(default_factory=dict)
    checks: list[tuple[str, list[str]]] = field(default_factory=list)
    walk: Walk = field(default_factory=Walk)
    settled: bool = False  # every event applied by every subscriber before the stop


def run_demo(workers: int, rounds: int, stage_seconds: float = STAGE_SECONDS) -> int:
    base = load_settings()
    data_dir = base.data_dir / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    env, ports = isolated_env(data_dir)
    settings = SharedSettings(
        data_dir=data_dir,
        broker_port=int(env["SHOP_BROKER_PORT"]),
        kafka_bootstrap=base.kafka_bootstrap,
    )
    service_dbs = {e.name: e.settings(data_dir=data_dir).db for e in EXTRACTIONS}
    urls = {name: settings.url(port) for name, port in ports.items()}
    supervisor = Supervisor(env, data_dir / "logs")
    print(
        "Strangler Shop demo: the monolith, then members and commerce (orders, payments) "
        "extracted stage by stage"
        f"\ndata dir: {data_dir}   logs: {data_dir / 'logs'}"
    )
    print(report.heading("Processes"))
    started = time.monotonic()
    try:
        start_broker_if_embedded(supervisor, settings)
        supervisor.start_in_order(ports)
        for name, child in supervisor.children.items():
            print(f"  {name:<16} {child.url:<26} ready ({owns(name)})")
        if not settings.embedded_broker:
            print(f"  {'kafka':<16} {settings.kafka_bootstrap_servers:<26} (SHOP_KAFKA_BOOTSTRAP)")
        entry = supervisor.children["gateway"].url
        print(f"  entry point: {entry} (gateway), up in {time.monotonic() - started:.1f}s")
        stock_before = _stock_totals(settings)
        drive = asyncio.run(_drive(entry, workers, rounds))
        drive.stock_before = stock_before
        _print_stage_zero(drive, workers, rounds)
        last = len(STAGES) - 1
        print(report.heading(f"Stages 0 -> {last} under continuous load (gateway, stage engine)"))
        try:
            drive.walk = asyncio.run(
                walk_stages(
                    entry,
                    settings,
                    service_dbs,
                    Endpoints(urls, base.admin_token),
                    stage_seconds=stage_seconds,
                )
            )
        except Exception as exc:  # a broken system must still produce a report
            traceback.print_exc()  # where it broke, for the one reading the log
            drive.walk.load_violations.append(f"the stage walk stopped early: {exc!r}")
        drive.settled = _settle(Endpoints(urls, base.admin_token))
        drive.checks.append(_rebuild_read_model(urls[READ_MODEL], base.admin_token))
        drive.checks += _views_check(settings, service_dbs, drive, urls, base.admin_token)
    finally:
        exit_codes = supervisor.stop()
    drive.checks += _database_checks(settings, service_dbs, drive)
    drive.checks.append(
        (
            "graceful shutdown: every process exited 0 on SIGTERM",
            [f"{name} exited with {code}" for name, code in exit_codes.items() if code != 0],
        )
    )
    drive.checks += _walk_checks(drive)
    return _print(drive)


def isolated_env(data_dir: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The variables that give a whole system a data dir and free ports of its own (HTTP,
    gRPC, the dev broker), so it runs beside any other; and its HTTP ports by process."""
    processes = dict(PROCESSES)
    # Every port at once, so no two are the same (free_port() twice may name one port twice).
    free = iter(free_ports(len(processes) + 1 + len(EXTRACTIONS)))
    ports = {name: next(free) for name in processes}
    env = {
        "SHOP_DATA_DIR": str(data_dir),
        "SHOP_MONOLITH_POINTS_RECOVERY_INTERVAL": "1",
        # Seven processes and a broker share the laptop's cores: a points debit in the member
        # service's dual write (two SQLite files, one transaction) can queue past the default
        # 2 s deadline. Still below the monolith's 5 s server limit, as start-up checks.
        "SHOP_MONOLITH_MEMBER_TIMEOUT": os.environ.get("SHOP_MONOLITH_MEMBER_TIMEOUT", "4"),
        # The dev broker on a port of its own, unless SHOP_KAFKA_BOOTSTRAP names a Kafka.
        "SHOP_BROKER_PORT": str(next(free)),
        **{spec.port_env: str(ports[name]) for name, spec in processes.items()},
    }
    for extraction in EXTRACTIONS:  # each service's gRPC port, a quick sync and recovery
        variables = extraction.service.settings
        env[variables.variable("grpc_port")] = str(next(free))
        env[variables.variable("sync_interval")] = "0.2"
        env[variables.variable("recovery_interval")] = "1"
    return env, ports


def _rebuild_read_model(url: str, token: str) -> tuple[str, list[str]]:
    """Rebuilds the read model from the log (a fresh generation, swapped in when caught up);
    the views check that follows reads the rebuilt views."""
    print(report.heading("Read model: rebuild from the log"))
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as admin:
        try:
            admin.post("/admin/read-model/rebuild").raise_for_status()
            deadline = time.monotonic() + REBUILD_SECONDS
            while True:
                status = admin.get("/admin/read-model").json()["data"]["rebuild"]
                if status["state"] in ("swapped", "failed") or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        except httpx.HTTPError as exc:
            return ("the read model rebuilt from the log", [f"the rebuild failed: {exc!r}"])
    if status["state"] != "swapped":
        return ("the read model rebuilt from the log", [f"the rebuild ended {status}"])
    views = status["views"]
    print(
        f"  {status['generation']} replaced {status['replaced']}: {status['events_to_replay']} "
        f"events replayed in {status['seconds']:.2f}s into {views['my_page']} my pages and "
        f"{views['order']} order details, while the old generation kept serving"
    )
    return (f"the read model rebuilt from the log in {status['seconds']:.2f}s", [])


def _views_check(
    settings: SharedSettings,
    service_dbs: dict[str, str],
    drive: Drive,
    urls: dict[str, str],
    token: str,
) -> list[tuple[str, list[str]]]:
    """While the processes still run: every member's my page against the owners, and the
    read model's freshness over the whole run."""
    reached = drive.walk.rows[-1].number if drive.walk.rows else 0
    headers = {"Authorization": f"Bearer {token}"}
    with (
        owning_dbs(settings.legacy_db_url, service_dbs) as dbs,
        snapshot(reached, dbs) as conn,
        httpx.Client(headers=headers, timeout=30) as admin,
    ):
        problems = views_match_owners(admin, urls[READ_MODEL], conn)
        p99, changes = freshness(admin.get(f"{urls[READ_MODEL]}/metrics").text)
    return [
        (
            "every member's my page (read model) says what the owners say: points, each "
            f"order's status and payment; freshness p99 <= {p99 * 1000:.0f} ms over "
            f"{changes} view changes",
            problems,
        )
    ]


def _settle(endpoints: Endpoints) -> bool:
    """The load has stopped: wait for the last events to reach every subscriber."""
    with httpx.Client(timeout=30) as admin:
        try:
            return events_settle(admin, endpoints)
        except Exception:  # a broken system (no /metrics, a 504 instead) must still report
            return False


async def _drive(url: str, workers: int, rounds: int) -> Drive:
    tally = Tally()
    client = ShopClient(url, tally)
    journey, load, seconds = Journey(client), LoadResult(), 0.0
    try:
        listing = await client.call("GET", "/api/products", params={"limit": 100})
        products = listing.data["items"] if listing.status == 200 else []
        await journey.run()
        started = time.perf_counter()
        load = await run_load(client, products, workers, rounds)
        seconds = time.perf_counter() - started
    except Exception as exc:  # a broken system must still produce a report, not a traceback
        journey.violations.append(f"the drive stopped early: {exc!r}")
    finally:
        await client.aclose()
    return Drive(journey, load, tally, seconds)


def _stock_totals(settings: SharedSettings) -> dict[int, int]:
    engine = make_engine(settings.legacy_db_url)
    try:
        with engine.connect() as conn:
            return invariants.stock_totals(conn)
    finally:
        engine.dispose()


def _database_checks(
    settings: SharedSettings, service_dbs: dict[str, str], drive: Drive
) -> list[tuple[str, list[str]]]:
    """The whole system's invariants at the end, on its state gathered from the DBs that own
    each table at the stage the walk ended at (infra/demo/snapshot.py)."""
    retried = [(order, key) for order, key in drive.journey.retried_payments]
    retried += [(order, key) for order, key, _, _ in drive.load.retries]
    reached = drive.walk.rows[-1].number if drive.walk.rows else 0
    with owning_dbs(settings.legacy_db_url, service_dbs) as dbs, snapshot(reached, dbs) as conn:
        charged_twice = [
            f"order {order} has {n} payments"
            for order, _ in retried
            if (n := invariants.payments_for_order(conn, order)) != 1
        ]
        mismatched = [
            f"order {o}: first payment {a}, retry answered {b}"
            for o, _, a, b in drive.load.retries
            if a != b
        ]
        return [
            (
                "every response is an envelope with X-Request-Id and X-Served-By, no 5xx",
                drive.tally.violations,
            ),
            ("the customer journey answered as expected", drive.journey.violations),
            ("the load saw only expected refusals", drive.load.violations),
            (
                "stock is conserved (stock left + held for orders is unchanged)",
                invariants.stock_is_conserved(conn, drive.stock_before),
            ),
            (
                "stock is held exactly for the placed and paid orders (the catalogue's "
                "holds against the orders' owner)",
                invariants.holds_match_orders(conn, conn),
            ),
            ("order totals match their lines", invariants.order_totals_match_lines(conn)),
            (
                "payments match orders (paid once, refunded once)",
                invariants.payments_match_orders(conn),
            ),
            (
                "every order status change announced once, in order (shop.orders)",
                invariants.order_events_match_status(conn),
            ),
            (
                "every member change announced once, in order, with the member's state "
                "(shop.members)",
                invariants.member_events_match_versions(conn),
            ),
            (
                "each paid order is shipped, each refunded one's shipment cancelled "
                "(fulfilment, a subscriber of shop.payments)",
                (
                    invariants.shipments_match_orders(conn)
                    if drive.settled
                    else ["the events did not settle before the processes stopped"]
                ),
            ),
            (
                f"a retried payment is charged once ({len(retried)} retries)",
                charged_twice + mismatched,
            ),
            (
                "points balances match the ledger and none is below zero (the members' owner)",
                invariants.points_match_ledger(conn),
            ),
        ]


def _walk_checks(drive: Drive) -> list[tuple[str, list[str]]]:
    walk = drive.walk
    checks = [
        (
            f"stage {row.number} ({STAGES[row.number].name}): no 5xx, envelopes, acknowledged "
            "writes in the owning DBs, drift 0, events applied, invariants",
            row.problems,
        )
        for row in walk.rows
    ]
    if walk.load_violations:
        checks.append(("the stage walk ran to its end", walk.load_violations))
    if len(walk.rows) < len(STAGES):
        checks.append(
            (
                f"the walk reached stage {len(STAGES) - 1}",
                [f"it stopped at stage {len(walk.rows) - 1}"],
            )
        )
    return checks


def _print_stage_zero(drive: Drive, workers: int, rounds: int) -> None:
    print(report.heading("Customer journey"))
    print("\n".join(report.journey_lines(drive.journey.steps)))
    print(report.heading(f"Concurrent load: {workers} customers x {rounds} rounds"))
    print("\n".join(report.traffic_lines(drive.tally, drive.load_seconds)))
    refusals = ", ".join(f"{k} {v}" for k, v in sorted(drive.load.refusals.items())) or "none"
    print(
        f"  orders placed {drive.load.orders_placed}   payments {drive.load.payments}   "
        f"retried payments {len(drive.load.retries)}   refusals: {refusals}"
    )


def _print(drive: Drive) -> int:
    walk = drive.walk
    print(report.heading("Per stage"))
    print("\n".join(table_lines(walk)))
    refusals = ", ".join(f"{k} {v}" for k, v in sorted(walk.refusals.items())) or "none"
    print(f"  signups {walk.signups}   payments {walk.payments}   expected refusals: {refusals}")
    print(report.heading("Invariants"))
    print("\n".join(report.invariant_lines(drive.checks)))
    failed = sum(1 for _, problems in drive.checks if problems)
    print(
        f"\nRESULT: {'PASS' if not failed else 'FAIL'} "
        f"({len(drive.checks) - failed}/{len(drive.checks)} invariants hold)"
    )
    print(
        "Next: .venv/bin/shop up, then .venv/bin/shop stage apply 1 (and on); "
        "docs/stages/ explains each stage"
    )
    return 0 if not failed else 1
