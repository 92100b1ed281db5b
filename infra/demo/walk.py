"""The stage walk: stages 0 -> 9 applied live by the stage engine under the continuous mixed
load, each stage checked before the next is applied:

- no 5xx, every response a valid envelope (the client checks every reply);
- every event published and applied by every subscriber (the outboxes' backlog and every
  consumer group's lag at 0), none parked;
- every acknowledged write is in the DB the stage says owns it: signups and the last profile
  change, each payment's points line (and its refund's), each order, cancel, payment and
  refund;
- no points debit is left unsettled;
- drift 0 wherever both DBs of an extraction are live (shared after the sync drained, dual);
- the whole system's invariants, on its state gathered from the owning DBs (snapshot.py):
  stock conserved, order totals, each order paid at most once, every status change
  announced, shipments, holds, balances against the ledger;
- every member's my page in the read model says what the owners say (infra/demo/views.py).

The load pauses only while the checks read the databases; every stage change happens under
it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from infra.demo.client import ShopClient, Tally
from infra.demo.mixed import MixedLoad
from infra.demo.snapshot import snapshot
from infra.demo.views import views_match_owners
from infra.extractions import EXTRACTIONS, MEMBERS, ORDERS, PAYMENTS, Extraction
from infra.processes import READ_MODEL
from infra.settings import SharedSettings
from infra.stages import (
    STAGES,
    Endpoints,
    RampOptions,
    StageEngine,
    StageRefused,
    phase_reached,
    writes_held_by,
)
from libs.db import make_engine
from libs.dualwrite.reconcile import Reconciler
from monolith import invariants
from monolith.service_layer import catalog, fulfilment
from monolith.service_layer.events import ORDERS_TOPIC, PAYMENTS_TOPIC

# Seconds of load inside each stage before its checks; the transition into a stage runs under
# load too and counts towards it.
STAGE_SECONDS = 5.0
# The demo's ramp judges windows of a couple of seconds and a hundred-odd requests on 2 shared
# cores, where one argon2 signup queued behind another sets a window's p99: the gate keeps its
# error-rate test at full strength and tolerates p99 up to two seconds over the baseline.
# `shop stage apply 2` on a real deployment uses the gateway's defaults (SHOP_GATEWAY_RAMP_*).
DEMO_RAMP = RampOptions(
    interval_seconds=2.0,
    min_requests=20,
    p99_ratio=4.0,
    p99_slack_ms=2000.0,
    max_wait_intervals=30,  # the payment route's windows fill slowest: let them grow
    timeout_seconds=150.0,
)
# A debit pending or being given back when the load is paused is a lost or stuck give-back.
UNSETTLED = ("pending", "cancelling")
# How long the checks wait for the events of the stage's last writes.
EVENT_WAIT_SECONDS = 15.0
# Who publishes events (an outbox and its relay), and who consumes them.
PUBLISHERS = ("monolith", MEMBERS.service.name, ORDERS.service.name, PAYMENTS.service.name)
SUBSCRIBERS = ("monolith", MEMBERS.service.name, ORDERS.service.name, READ_MODEL)
# Who answers for the points debits: the payment service reads `point_spends` where the data
# mode says (the legacy DB the monolith also writes until dual write, its own DB after); the
# monolith reads only the legacy table, frozen from stage 8 on.
DEBITORS = (PAYMENTS.service.name,)


def owners(number: int, extraction: Extraction = MEMBERS) -> tuple[str, ...]:
    """The DBs that must hold every acknowledged write of an extraction at stage `number`."""
    return tuple(
        {"new": extraction.name}.get(db, db) for db in writes_held_by(number, extraction.name)
    )


def events_carry_points(number: int) -> bool:
    """From the members' dual write on, a card payment's points travel as its event."""
    return phase_reached(number, MEMBERS.name) in ("dual", "single")


@dataclass
class StageRow:
    number: int
    tally: Tally
    seconds: float = 0.0
    sync_lag: float | None = None
    drift: str = "-"
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    events: dict[str, float] = field(default_factory=dict)  # published, consumed, lag

    def split(self, route: str) -> str:
        """The share of a route's requests the monolith served, as "90%"."""
        counts = {b: n for (r, b), n in self.tally.by_route.items() if r == route}
        total = sum(counts.values())
        return f"{100 * counts.get('monolith', 0) // total}%" if total else "-"


@dataclass
class Walk:
    rows: list[StageRow] = field(default_factory=list)
    load_violations: list[str] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)
    payments: int = 0
    signups: int = 0


async def walk_stages(
    gateway_url: str,
    settings: SharedSettings,
    service_dbs: dict[str, str],
    endpoints: Endpoints,
    workers: int = 6,
    stage_seconds: float = STAGE_SECONDS,
) -> Walk:
    """`service_dbs`: each extraction's name -> its service's DB URL; `stage_seconds`: how
    long the load runs in each stage before its checks."""
    client = ShopClient(gateway_url, Tally())
    walk = Walk()
    listing = await client.call("GET", "/api/products", params={"limit": 100})
    load = MixedLoad(client, listing.data["items"], workers)
    engine = StageEngine(endpoints, DEMO_RAMP, say=lambda line: print(f"    {line}"))
    dbs = {"legacy": make_engine(settings.legacy_db_url)}
    dbs |= {name: make_engine(url) for name, url in service_dbs.items()}
    with dbs["legacy"].connect() as conn:  # stock + held: constant whatever the traffic
        stock_before = invariants.stock_totals(conn)
    seen_violations = 0
    load.start()
    try:
        for number in range(len(STAGES)):
            row = StageRow(number, Tally())
            client.tally = row.tally
            started = time.monotonic()
            print(f"  stage {number}: {STAGES[number].name}")
            if number:
                try:
                    await asyncio.to_thread(engine.apply, number)
                except StageRefused as exc:
                    row.problems.append(f"stage {number} was refused: {exc}")
            row.sync_lag = await _highest_lag(endpoints, stage_seconds)
            await load.pause()
            row.seconds = time.monotonic() - started
            await asyncio.to_thread(_check, row, load, dbs, endpoints, stock_before)
            row.problems += row.tally.violations + load.violations[seen_violations:]
            seen_violations = len(load.violations)
            walk.rows.append(row)
            load.resume()
            if row.problems and any("refused" in p for p in row.problems):
                break
    finally:
        await load.stop()
        await client.aclose()
        engine.close()
        for db in dbs.values():
            db.dispose()
    walk.refusals = load.refusals
    walk.payments, walk.signups = len(load.acked.payments), len(load.acked.members)
    return walk


def _check(
    row: StageRow,
    load: MixedLoad,
    dbs: dict[str, sa.Engine],
    ep: Endpoints,
    stock_before: dict[int, int],
) -> None:
    admin = _admin(ep)
    try:
        for service in _services(ep):
            lag = _gauge(admin.get(f"{ep.urls[service]}/metrics").text, LAG)
            if lag is not None:
                row.sync_lag = max(row.sync_lag or 0.0, lag)
        if not events_settle(admin, ep):
            row.problems.append(
                f"the events did not settle within {EVENT_WAIT_SECONDS:.0f}s "
                "(an outbox backlog or a consumer group's lag above 0)"
            )
        row.events = event_flow(admin, ep)
        if row.events.get("parked"):
            row.problems.append(f"{row.events['parked']:.0f} events parked by a consumer")
        for process in DEBITORS:
            debits = admin.get(f"{ep.urls[process]}/admin/points-debits").json()["data"]
            unsettled = {k: n for k, n in debits["counts"].items() if k in UNSETTLED}
            if unsettled:
                row.problems.append(f"{process}: points debits left unsettled: {unsettled}")
    finally:
        admin.close()
    row.drift = _drift(row, dbs)
    row.checked = _acked_present(row.number, load, dbs, row.problems)
    with snapshot(row.number, dbs) as conn:
        row.problems += [
            *invariants.stock_is_conserved(conn, stock_before),
            *invariants.order_totals_match_lines(conn),
            *invariants.payments_match_orders(conn),
            *invariants.order_events_match_status(conn),
            *invariants.member_events_match_versions(conn),
            *invariants.shipments_match_orders(conn),
            *invariants.holds_match_orders(conn, conn),
            *invariants.points_match_ledger(conn),
            *invariants.every_event_consumed_once(conn, fulfilment.GROUP, PAYMENTS_TOPIC),
            *invariants.every_event_consumed_once(conn, catalog.GROUP, ORDERS_TOPIC),
        ]
        if READ_MODEL in ep.urls:
            with _admin(ep) as admin:
                row.problems += views_match_owners(admin, ep.urls[READ_MODEL], conn)


def _admin(ep: Endpoints) -> httpx.Client:
    return httpx.Client(headers={"Authorization": f"Bearer {ep.token}"}, timeout=30)


def _services(ep: Endpoints) -> list[str]:
    return [e.service.name for e in EXTRACTIONS if e.service.name in ep.urls]


def _drift(row: StageRow, dbs: dict[str, sa.Engine]) -> str:
    """Every extraction whose two DBs are both live must agree: at once in dual write; in the
    shared-DB stages once the sync has copied the last writes (it trails by the sync lag)."""
    found = []
    for e in EXTRACTIONS:
        phase = phase_reached(row.number, e.name)
        if phase not in ("shared", "ramp", "dual"):
            continue
        reconciler = Reconciler(e.migration(), dbs["legacy"], dbs[e.name])
        report = reconciler.check()
        deadline = time.monotonic() + 15.0
        while report.has_drift and phase != "dual" and time.monotonic() < deadline:
            time.sleep(0.2)
            report = reconciler.check()
        found.append(report.has_drift)
        if report.has_drift:
            row.problems.append(f"{e.name}: {report.render()}")
    return "-" if not found else "DRIFT" if any(found) else "0"


def _acked_present(
    number: int, load: MixedLoad, dbs: dict[str, sa.Engine], problems: list[str]
) -> int:
    """Each acknowledged write, in every DB that must hold it at this stage. A card
    payment's points may still be on their way as its event: the check waits for them a
    bounded time."""
    deadline = time.monotonic() + EVENT_WAIT_SECONDS
    while True:
        missing: list[str] = []
        for db in owners(number, MEMBERS):
            _members_present(load, dbs[db], db, missing)
        for db in owners(number, ORDERS):
            _orders_present(load, dbs[db], db, missing)
        for db in owners(number, PAYMENTS):
            _payments_present(load, dbs[db], db, missing)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    problems += missing
    acked = load.acked
    return sum(
        len(writes)
        for writes in (
            acked.members, acked.profiles, acked.orders, acked.cancels, acked.payments,
            acked.refunds,
        )
    )  # fmt: skip


def _members_present(load: MixedLoad, engine: sa.Engine, db: str, problems: list[str]) -> None:
    acked = load.acked
    with engine.connect() as conn:
        members = {
            r.id: (r.email, r.name)
            for r in conn.execute(sa.text("SELECT id, email, name FROM members"))
        }
        lines = set(
            conn.execute(
                sa.text("SELECT payment_id, reason FROM point_ledger WHERE payment_id IS NOT NULL")
            )
        )
    for member_id, email in acked.members.items():
        if members.get(member_id, (None,))[0] != email:
            problems.append(f"{db} DB: acknowledged signup {member_id} <{email}> is missing")
    for member_id, name in acked.profiles.items():
        if member_id in members and members[member_id][1] != name:
            problems.append(
                f"{db} DB: member {member_id} has name {members[member_id][1]!r}, "
                f"the last acknowledged update set {name!r}"
            )
    for payment_id, payment in acked.payments.items():
        if payment.points_earned and (payment_id, "earn") not in lines:
            problems.append(
                f"{db} DB: payment {payment_id}'s {payment.points_earned} points are missing"
            )
    for payment_id in acked.refunds:
        if acked.payments[payment_id].points_earned and (payment_id, "take-back") not in lines:
            problems.append(f"{db} DB: the take-back of refunded payment {payment_id} is missing")


def _orders_present(load: MixedLoad, engine: sa.Engine, db: str, problems: list[str]) -> None:
    acked = load.acked
    with engine.connect() as conn:
        found: dict[int, str] = dict(conn.execute(sa.text("SELECT id, status FROM orders")).all())
    for order_id in acked.orders:
        status = found.get(order_id)
        if status is None:
            problems.append(f"{db} DB: acknowledged order {order_id} is missing")
        elif order_id in acked.cancels and status != "CANCELLED":
            problems.append(f"{db} DB: order {order_id} was cancelled, it is {status}")
    for payment_id, payment in acked.payments.items():
        want = "REFUNDED" if payment_id in acked.refunds else "PAID"
        if found.get(payment.order) not in (want, None):
            problems.append(
                f"{db} DB: order {payment.order} (payment {payment_id}) is "
                f"{found.get(payment.order)}, not {want}"
            )


def _payments_present(load: MixedLoad, engine: sa.Engine, db: str, problems: list[str]) -> None:
    acked = load.acked
    with engine.connect() as conn:
        found = {
            r.id: (r.order_id, r.status)
            for r in conn.execute(sa.text("SELECT id, order_id, status FROM payments"))
        }
        keys: dict[str, object] = dict(
            conn.execute(
                sa.text("SELECT key, response FROM idempotency_keys WHERE operation = 'pay'")
            ).all()
        )
    for payment_id, payment in acked.payments.items():
        want = "REFUNDED" if payment_id in acked.refunds else "CAPTURED"
        if found.get(payment_id) != (payment.order, want):
            problems.append(
                f"{db} DB: acknowledged payment {payment_id} of order {payment.order} "
                f"({want}) is {found.get(payment_id)}"
            )
        if payment.key not in keys:
            problems.append(f"{db} DB: the Idempotency-Key of payment {payment_id} is missing")


LAG = "shop_sync_lag_seconds"


def events_settle(admin: httpx.Client, ep: Endpoints) -> bool:
    """Waits until every publisher has published its outbox and every subscriber has applied
    what was published: the consumers' dual writes must be over before the reconciler
    compares two DBs (a two-phase commit lands in one DB a moment before the other). Backlogs
    and lags must read 0 twice in a row, so it is not a reading from before the last fetch."""
    deadline, zero = time.monotonic() + EVENT_WAIT_SECONDS, 0
    while time.monotonic() < deadline:
        pages = _pages(admin, ep)
        backlog = sum(_sum(pages[p], "shop_outbox_backlog") for p in PUBLISHERS if p in pages)
        lags = [lag for p in SUBSCRIBERS if p in pages for lag in _samples(pages[p], LAG_EVENTS)]
        zero = zero + 1 if not backlog and not any(lags) else 0
        if zero >= 2:
            return True
        time.sleep(0.3)
    return False


def event_flow(admin: httpx.Client, ep: Endpoints) -> dict[str, float]:
    """Events published (every relay), consumed (every group, processed or duplicate),
    parked, and the consumers' total lag, from the processes' /metrics."""
    pages = _pages(admin, ep)
    flow = {"published": 0.0, "consumed": 0.0, "parked": 0.0, "lag": 0.0}
    for process, text in pages.items():
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "shop_outbox_published_total" and process in PUBLISHERS:
                    flow["published"] += sample.value
                elif sample.name == "shop_consumer_events_total":
                    outcome = sample.labels["outcome"]
                    flow["parked" if outcome == "parked" else "consumed"] += sample.value
                elif sample.name == LAG_EVENTS:
                    flow["lag"] += sample.value
    return flow


LAG_EVENTS = "shop_consumer_lag"


def _pages(admin: httpx.Client, ep: Endpoints) -> dict[str, str]:
    names = {*PUBLISHERS, *SUBSCRIBERS}
    return {name: admin.get(f"{ep.urls[name]}/metrics").text for name in names if name in ep.urls}


async def _highest_lag(ep: Endpoints, seconds: float) -> float | None:
    """The highest sync lag any service reports while the stage runs (its /metrics)."""
    highest, deadline = None, time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            for service in _services(ep):
                try:
                    lag = _gauge((await http.get(f"{ep.urls[service]}/metrics")).text, LAG)
                except httpx.HTTPError:
                    lag = None
                if lag is not None:
                    highest = max(highest or 0.0, lag)
            await asyncio.sleep(0.5)
    return highest


def _samples(text: str, name: str) -> list[float]:
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _sum(text: str, name: str) -> float:
    return sum(_samples(text, name))


def _gauge(text: str, name: str) -> float | None:
    """The first sample of `name` in a Prometheus text page."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


def table_lines(walk: Walk) -> list[str]:
    """Per stage: traffic, who served each moving route (the monolith's share), the sync lag
    while the stage ran, drift, the event flow so far, and the acknowledged writes checked."""
    lines = [
        "  stage                    requests  5xx  4xx   monolith's share      sync lag"
        "  drift   events: published consumed lag  writes checked",
        "                                                members orders payments",
    ]
    for row in walk.rows:
        five = sum(n for s, n in row.tally.by_status.items() if s >= 500)
        four = sum(n for s, n in row.tally.by_status.items() if 400 <= s < 500)
        phases = {e.name: phase_reached(row.number, e.name) for e in EXTRACTIONS}
        syncing = any(phase in ("shared", "ramp") for phase in phases.values())
        lag = f"{row.sync_lag:.2f}s" if row.sync_lag is not None and syncing else "-"
        split = " ".join(
            f"{row.split(route):>{width}}"
            for route, width in (("members", 7), ("orders", 6), ("payments", 8))
        )
        flow = row.events
        events = (
            f"{flow.get('published', 0):>9.0f} {flow.get('consumed', 0):>8.0f}"
            f" {flow.get('lag', 0):>3.0f}"
        )
        lines.append(
            f"  {row.number} {STAGES[row.number].name:<22} {row.tally.requests:>8}  {five:>3}"
            f"  {four:>3}   {split}  {lag:>8}  {row.drift:>5}   {events}  {row.checked:>14}"
        )
    return lines
