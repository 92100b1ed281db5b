"""The chaos walk (`shop chaos`): the whole system at its last stage, where every backend
serves a route of its own, under the demo's continuous mixed load; each process kind in turn
is killed with SIGKILL (no drain, no flush, no offset commit: a crash), left down a moment
and started again on its port. Afterwards nothing acknowledged may be lost and every
invariant the demo checks must hold.

There is one instance of each process, so clients do see errors while one is down (a killed
gateway refuses connections; a request in flight in a killed backend is cut off): they are
counted per process and reported, not forbidden. What a crash must never do is lose an
acknowledged write, charge twice, overspend points, lose or create stock, or apply an event
twice: the outbox, the idempotent consumers and the owners' transactions are what hold, and
the checks below are the demo's own (infra/demo/walk.py, monolith/invariants.py,
infra/demo/views.py).

The relays and consumers run inside the processes that own them (libs/events, started in each
app's lifespan), so killing a process kills its relay and consumers with it."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from infra.demo import report
from infra.demo.client import Reply, ShopClient, Tally
from infra.demo.mixed import MixedLoad
from infra.demo.run import isolated_env
from infra.demo.snapshot import owning_dbs, snapshot
from infra.demo.views import views_match_owners
from infra.demo.walk import (
    LAG_EVENTS,
    SUBSCRIBERS,
    _acked_present,
    event_flow,
    events_settle,
    owners,
)
from infra.extractions import EXTRACTIONS, MEMBERS, PAYMENTS
from infra.processes import PROCESSES, READ_MODEL
from infra.settings import SharedSettings, load_settings
from infra.stages import STAGES, Endpoints, StageEngine
from infra.supervisor import BROKER, Supervisor
from infra.up import start_broker_if_embedded
from libs.db import make_engine
from monolith import invariants
from monolith.service_layer import catalog, fulfilment
from monolith.service_layer.events import ORDERS_TOPIC, PAYMENTS_TOPIC

# The order of the faults: the edge, the legacy core, each extracted service, the read model,
# then the broker every relay and consumer talks to.
FAULTS = (
    "gateway",
    "monolith",
    "member-service",
    "order-service",
    "payment-service",
    READ_MODEL,
    BROKER,
)
LAST = len(STAGES) - 1
WARM_UP_SECONDS = 2.0
READY_SECONDS = 60.0  # a restart on two busy cores: imports, migrations, the app's start-up
# A consumer group that lost its coordinator (the broker) or a member (a killed process) joins
# again once the old member's session has timed out: seconds, during which it has no
# partitions and so reports no lag at all.
REJOIN_SECONDS = 60.0
# The load's violations the windows have counted already: a 5xx, a transport error.
COUNTED = re.compile(r"got 5\d\d|\w+(Error|Timeout)\(")


@dataclass
class Window:
    """What the clients sent and saw during one phase of a fault."""

    tally: Tally = field(default_factory=Tally)
    sent: int = 0  # requests answered or failed in the window
    errors: Counter = field(default_factory=Counter)  # "ConnectError", "502 BAD_GATEWAY", ...

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


@dataclass
class Fault:
    process: str
    down: Window = field(default_factory=Window)  # from the kill until ready again
    back: Window = field(default_factory=Window)  # the seconds after, on the new process
    down_seconds: float = 0.0


class CountingClient(ShopClient):
    """The demo's client, counting into the current window every request and every error
    seen: a 5xx reply, or a transport error (a refused or cut connection, a timeout), which
    is raised on to the load as before."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.window = Window()
        # The writes answered by an error: sent, maybe committed, the client cannot tell
        # (docs/contracts.md); (method, path, JSON body).
        self.unknown: list[tuple[str, str, Any]] = []
        super().__init__(base_url, self.window.tally, timeout)

    def enter(self, window: Window) -> None:
        self.window, self.tally = window, window.tally

    async def call(self, method: str, path: str, **options: Any) -> Reply:
        """Counted in the window it ends in: a request in flight when a process is killed
        counts towards that process."""
        try:
            reply = await super().call(method, path, **options)
        except httpx.HTTPError as exc:
            self._failed(type(exc).__name__, method, path, options.get("json"))
            raise
        if reply.status >= 500:
            self._failed(f"{reply.status} {reply.code}", method, path, options.get("json"))
        else:
            self.window.sent += 1
        return reply

    def _failed(self, kind: str, method: str, path: str, body: Any) -> None:
        self.window.sent += 1
        self.window.errors[kind] += 1
        if method != "GET":
            self.unknown.append((method, path, body))


@dataclass
class ChaosRun:
    faults: list[Fault] = field(default_factory=list)
    checks: list[tuple[str, list[str]]] = field(default_factory=list)
    load_violations: list[str] = field(default_factory=list)
    acked_writes: int = 0
    seconds: float = 0.0
    warm_up: Window = field(default_factory=Window)  # before the first kill
    unknown: list[tuple[str, str, Any]] = field(default_factory=list)  # CountingClient's
    unknown_committed: int = 0
    # (process, group, topic, partition) of every consumer's partition before the faults
    assigned: set[tuple[str, ...]] = field(default_factory=set)

    @property
    def passed(self) -> bool:
        return not any(problems for _, problems in self.checks)


def run_chaos(
    data_dir: Path,
    workers: int = 6,
    down_seconds: float = 2.0,
    back_seconds: float = 2.0,
    say: Callable[[str], None] = print,
) -> ChaosRun:
    """The walk on a fresh system in `data_dir` (ports of its own); the report is printed
    through `say` as it goes."""
    started = time.monotonic()
    env, ports = isolated_env(data_dir)
    base = load_settings(SharedSettings)
    settings = SharedSettings(
        data_dir=data_dir,
        broker_port=int(env["SHOP_BROKER_PORT"]),
        kafka_bootstrap=base.kafka_bootstrap,
    )
    service_dbs = {e.name: e.settings(data_dir=data_dir).db for e in EXTRACTIONS}
    supervisor = Supervisor(env, data_dir / "logs")
    say(f"data dir: {data_dir}   logs: {data_dir / 'logs'}")
    run = ChaosRun()
    try:
        start_broker_if_embedded(supervisor, settings)
        supervisor.start_in_order({name: ports[name] for name in PROCESSES})
        urls = {name: child.url for name, child in supervisor.children.items()}
        endpoints = Endpoints(urls, base.admin_token)
        engine = StageEngine(endpoints, say=lambda _: None, ramps=False)
        try:
            engine.apply(LAST, force=True)
        finally:
            engine.close()
        say(f"every process up, at stage {LAST} ({STAGES[LAST].name})")
        stock_before = _stock_totals(settings.legacy_db_url)
        load = asyncio.run(
            _faults_under_load(supervisor, settings, run, workers, down_seconds, back_seconds, say)
        )
        run.checks = _checks(load, settings, service_dbs, endpoints, stock_before, run, supervisor)
    finally:
        codes = supervisor.stop()
    run.checks.append(
        (
            "every answer, errors included, is an envelope with X-Request-Id and X-Served-By",
            _contract_violations(run),
        )
    )
    run.checks.append(
        (
            "every process, restarted ones included, exited 0 on SIGTERM at the end",
            [f"{name} exited with {code}" for name, code in codes.items() if code != 0],
        )
    )
    run.seconds = time.monotonic() - started
    return run


async def _faults_under_load(
    supervisor: Supervisor,
    settings: SharedSettings,
    run: ChaosRun,
    workers: int,
    down_seconds: float,
    back_seconds: float,
    say: Callable[[str], None],
) -> MixedLoad:
    client = CountingClient(supervisor.children["gateway"].url, timeout=30)
    client.enter(run.warm_up)
    try:
        listing = await client.call("GET", "/api/products", params={"limit": 100})
        load = MixedLoad(client, listing.data["items"], workers=workers)
        load.start()
        await asyncio.sleep(WARM_UP_SECONDS)
        run.assigned = await asyncio.to_thread(_assigned, supervisor)
        for name in FAULTS:
            if name not in supervisor.children:  # a Kafka of its own (SHOP_KAFKA_BOOTSTRAP)
                say(f"  {name}: not run here, skipped")
                continue
            fault = Fault(name)
            client.enter(fault.down)
            killed = time.monotonic()
            await asyncio.to_thread(_kill, supervisor, name)
            await asyncio.sleep(down_seconds)
            await asyncio.to_thread(_start_again, supervisor, settings, name)
            fault.down_seconds = time.monotonic() - killed
            client.enter(fault.back)
            await asyncio.sleep(back_seconds)
            run.faults.append(fault)
            say(
                f"  kill -9 {name}: down {fault.down_seconds:.1f}s, "
                f"{fault.down.failed}/{fault.down.sent} requests failed"
            )
        await load.stop()
    finally:
        await client.aclose()
    run.load_violations = load.violations
    run.unknown = client.unknown
    return load


def _assigned(supervisor: Supervisor) -> set[tuple[str, ...]]:
    """The partitions each subscriber's consumer groups hold now, from their lag gauges (a
    partition's gauge is removed when it is revoked)."""
    held: set[tuple[str, ...]] = set()
    with httpx.Client(timeout=30) as http:
        for name in SUBSCRIBERS:
            text = http.get(f"{supervisor.children[name].url}/metrics").text
            for family in text_string_to_metric_families(text):
                held |= {
                    (name, s.labels["group"], s.labels["topic"], s.labels["partition"])
                    for s in family.samples
                    if s.name == LAG_EVENTS
                }
    return held


def _rejoined(supervisor: Supervisor, before: set[tuple[str, ...]]) -> list[str]:
    """Waits until every consumer group holds again every partition it held before the
    faults: until then a lag of 0 says nothing. Returns the partitions still missing."""
    deadline = time.monotonic() + REJOIN_SECONDS
    while missing := before - _assigned(supervisor):
        if time.monotonic() > deadline:
            return [f"{p} {g} has not got {t}[{n}] back" for p, g, t, n in sorted(missing)]
        time.sleep(0.5)
    return []


REFUND = re.compile(r"/api/payments/(\d+)/refund$")


def _take_owners_word(
    load: MixedLoad, unknown: list[tuple[str, str, Any]], dbs: dict[str, sa.Engine]
) -> int:
    """A write answered by an error may have been committed: where the owner holds it, it
    joins the acknowledged ones (and is checked with them, a refund's points take-back
    included); a refund or a profile change the owner does not hold was not made. The
    other writes are not looked for unless acknowledged. Returns how many the owners hold."""
    refunds = {int(m[1]) for _, path, _ in unknown if (m := REFUND.match(path))}
    names = {body["name"] for method, _, body in unknown if method == "PATCH" and body}
    (payments_db,) = owners(LAST, PAYMENTS)
    (members_db,) = owners(LAST, MEMBERS)
    with dbs[payments_db].connect() as conn:
        refunded = {
            payment_id
            for payment_id, status in conn.execute(sa.text("SELECT id, status FROM payments"))
            if payment_id in refunds and status == "REFUNDED"
        }
    with dbs[members_db].connect() as conn:
        renamed = {
            member_id: name
            for member_id, name in conn.execute(sa.text("SELECT id, name FROM members"))
            if name in names and load.acked.profiles.get(member_id) != name
        }
    load.acked.refunds |= refunded & set(load.acked.payments)
    load.acked.profiles |= renamed
    return len(refunded) + len(renamed)


def _kill(supervisor: Supervisor, name: str) -> None:
    child = supervisor.children[name]
    child.process.send_signal(signal.SIGKILL)
    child.process.wait()


def _start_again(supervisor: Supervisor, settings: SharedSettings, name: str) -> None:
    """The same process on the same port and data, returned once it is ready."""
    port = supervisor.children[name].port
    if name == BROKER:
        supervisor.start_broker(port, settings.data_dir / "broker")
    else:
        supervisor.start(name, port)
    supervisor.wait_ready(READY_SECONDS)


def _stock_totals(legacy_url: str) -> dict[int, int]:
    engine = make_engine(legacy_url)
    try:
        with engine.connect() as conn:
            return invariants.stock_totals(conn)
    finally:
        engine.dispose()


def _contract_violations(run: ChaosRun) -> list[str]:
    """What the demo's client found wrong with an answer, but a 5xx: an error is allowed
    while a process is down, an answer without the envelope is not."""
    windows = [run.warm_up, *(w for f in run.faults for w in (f.down, f.back))]
    return [v for w in windows for v in w.tally.violations if ": server error " not in v]


def _checks(
    load: MixedLoad,
    settings: SharedSettings,
    service_dbs: dict[str, str],
    endpoints: Endpoints,
    stock_before: dict[int, int],
    run: ChaosRun,
    supervisor: Supervisor,
) -> list[tuple[str, list[str]]]:
    """The load has stopped: once every consumer group has its partitions back and the
    events have settled, the demo's checks at the last stage, on the state the owners hold."""
    headers = {"Authorization": f"Bearer {endpoints.token}"}
    with httpx.Client(headers=headers, timeout=30) as admin:
        rejoined = _rejoined(supervisor, run.assigned)
        settled = events_settle(admin, endpoints)
        parked = event_flow(admin, endpoints).get("parked", 0.0)
        with owning_dbs(settings.legacy_db_url, service_dbs) as dbs:
            run.unknown_committed = _take_owners_word(load, run.unknown, dbs)
            lost: list[str] = []
            run.acked_writes = _acked_present(LAST, load, dbs, lost)
            with snapshot(LAST, dbs) as conn:
                applied_once = [
                    *invariants.order_events_match_status(conn),
                    *invariants.member_events_match_versions(conn),
                    *invariants.shipments_match_orders(conn),
                    *invariants.every_event_consumed_once(conn, fulfilment.GROUP, PAYMENTS_TOPIC),
                    *invariants.every_event_consumed_once(conn, catalog.GROUP, ORDERS_TOPIC),
                ]
                stock = [
                    *invariants.stock_is_conserved(conn, stock_before),
                    *invariants.holds_match_orders(conn, conn),
                ]
                return [
                    (
                        f"the events settled: every consumer group holds its "
                        f"{len(run.assigned)} partitions again, every outbox published, "
                        "every lag 0, none parked",
                        rejoined
                        + ([] if settled else ["a backlog or a lag above 0 remained"])
                        + ([f"{parked:.0f} events parked"] if parked else []),
                    ),
                    (
                        f"0 lost: {run.acked_writes} acknowledged writes in the owning DBs "
                        f"({run.unknown_committed} of them answered by an error but committed)",
                        lost,
                    ),
                    (
                        "0 double charges: payments match orders (paid once, refunded once)",
                        invariants.payments_match_orders(conn),
                    ),
                    (
                        "0 points overspent: balances match the ledger, none below zero",
                        invariants.points_match_ledger(conn),
                    ),
                    ("stock conserved, held exactly for the placed and paid orders", stock),
                    ("order totals match their lines", invariants.order_totals_match_lines(conn)),
                    (
                        "every event applied once: status changes and member changes announced "
                        "once, shipments, the catalogue's and fulfilment's groups",
                        applied_once,
                    ),
                    (
                        "views converged: every member's my page says what the owners say",
                        views_match_owners(admin, endpoints.urls[READ_MODEL], conn),
                    ),
                ]


def fault_lines(faults: list[Fault]) -> list[str]:
    """Per process: how long it was down (kill to ready), the requests that ended while it
    was down and in the seconds after, how many failed, and what the clients saw."""
    lines = [
        "  process           down   while down: requests failed   back: requests failed"
        "   errors clients saw"
    ]
    for f in faults:
        kinds = ", ".join(f"{kind} {n}" for kind, n in f.down.errors.most_common()) or "none"
        lines.append(
            f"  {f.process:<16} {f.down_seconds:>4.1f}s  {f.down.sent:>20} {f.down.failed:>6}"
            f"  {f.back.sent:>14} {f.back.failed:>6}   {kinds}"
        )
        if f.back.errors:
            after = ", ".join(f"{kind} {n}" for kind, n in f.back.errors.most_common())
            lines.append(f"  {'':<16} once back: {after}")
    return lines


def print_report(run: ChaosRun, say: Callable[[str], None] = print) -> None:
    say(report.heading("Faults: kill -9, then the same process on the same port"))
    say("\n".join(fault_lines(run.faults)))
    warm = run.warm_up
    kinds = ", ".join(f"{kind} {n}" for kind, n in warm.errors.most_common())
    say(f"  before the first kill: {warm.sent} requests, {warm.failed} failed {kinds}".rstrip())
    say(
        f"  writes answered by an error (outcome unknown to the client): {len(run.unknown)}, "
        f"{run.unknown_committed} of the refunds and profile changes among them committed"
    )
    others = [v for v in run.load_violations if not COUNTED.search(v)]
    if others:
        say(f"  other unexpected answers the load saw: {len(others)}, e.g. {others[0]}")
    say(report.heading("Invariants"))
    say("\n".join(report.invariant_lines(run.checks)))
    failed = sum(1 for _, problems in run.checks if problems)
    say(
        f"\nRESULT: {'PASS' if not failed else 'FAIL'} "
        f"({len(run.checks) - failed}/{len(run.checks)} invariants hold) in {run.seconds:.0f}s"
    )


def main(workers: int, down_seconds: float, back_seconds: float) -> int:
    """`shop chaos`: the walk on a fresh data dir under SHOP_DATA_DIR/chaos."""
    data_dir = load_settings().data_dir / "chaos"
    shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"Strangler Shop chaos walk: kill -9 of each process in turn under the mixed load "
        f"({workers} workers), at stage {LAST}"
    )
    run = run_chaos(data_dir, workers, down_seconds, back_seconds)
    print_report(run)
    return 0 if run.passed else 1
