"""The CQRS read model against fan-out, side by side in one run: the talk says a page served
from a view built from events is cheaper and steadier than one stitched together from its
owners on every read, and fresh enough; this says by how much here, and how fresh.

    .venv/bin/python bench/read_model.py [--members 40] [--orders 5] [--seconds 5]
                                         [--rate 200] [--freshness-seconds 10]
                                         [--redis redis://127.0.0.1:6379/14]
                                         [--data-dir /dev/shm]
                                         [--quick]

Starts the whole system with `shop run`, like the demo, on SQLite in a temporary data dir
with the dev broker: the monolith, the gateway, the member, order and payment services, and
two read models, each consuming every event into views of its own: A without Redis, B with
Redis cache-aside (its own port, own SQLite file, own consumer group read-model-cached; the
Redis database given by --redis is flushed first). The gateway's members, orders and payments
routes go 100% to their services (the services stay in their default shared data mode).

Seeds --members members, each with --orders orders placed at the order service, 3 of them
paid by card at the payment service and 1 cancelled, and waits until both read models show
every page with every order in its final state. Then, for my page, at 1 and 32 concurrent
readers (each going round the members), --seconds per cell after a short warm-up:

1. view, no Redis: GET /api/views/my-page on read model A;
2. view, Redis: the same on read model B, with its cache hit ratio from its /metrics;
3. fan-out HTTP: read_model.fanout.compose_my_page_http through the gateway, as a client or
   a BFF at the edge would compose it (2 calls, then one per paid order);
4. fan-out gRPC: compose_my_page_grpc on channels to the three services' gRPC servers.

All four are checked to return the same page for a member before anything is timed. Each
cell also records the CPU time every process spent (from /proc), per page: on a machine of
2 cores, what a page costs all processes together bounds how many pages a second it serves.

Then freshness: orders placed (every other one paid) at --rate orders/s for
--freshness-seconds, open-loop (sent on a schedule, not one after another), read from read
model A's histogram shop_read_model_freshness_seconds (its buckets' counts before and after;
quantiles interpolated within a bucket), with the relay's leg of it from the outboxes' rows,
and end to end from the client's side for a sample: from an order's 201 until it is on its
member's page. Prints the table, the ratios, the targets met or missed, and the machine's
load. A script, not a timed test: nothing asserts on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import redis
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brokers import machine_line, percentile  # noqa: E402

from infra.admin import AdminClient  # noqa: E402
from infra.extractions import EXTRACTIONS  # noqa: E402
from infra.processes import PROCESSES, READ_MODEL  # noqa: E402
from infra.settings import SharedSettings, load_settings  # noqa: E402
from infra.supervisor import BROKER, Supervisor, free_ports  # noqa: E402
from infra.up import start_broker_if_embedded  # noqa: E402
from libs.db import make_engine  # noqa: E402
from libs.events.outbox import outbox_table  # noqa: E402
from libs.response import ApiError, ServiceError, parse_envelope  # noqa: E402
from read_model.fanout import Channels, compose_my_page_grpc, compose_my_page_http  # noqa: E402

READERS = (1, 32)
VIEW_A, VIEW_B = "view, no Redis", "view, Redis"
FANOUT_HTTP, FANOUT_GRPC = "fan-out HTTP", "fan-out gRPC"
ROWS = (VIEW_A, VIEW_B, FANOUT_HTTP, FANOUT_GRPC)
VIEWS, FANOUTS = (VIEW_A, VIEW_B), (FANOUT_HTTP, FANOUT_GRPC)
# The targets: a view serves >= 5x the fan-out's pages/s with <= 0.2x its p99, at each
# concurrency; at 200 orders/s a change is on the page within 200 ms at p99.
TARGET_THROUGHPUT = 5.0
TARGET_P99_SHARE = 0.2
TARGET_FRESHNESS_MS = 200.0
TARGET_RATE = 200.0
PAID_PER_MEMBER, CANCELLED_PER_MEMBER = 3, 1
# Members seeded at once, and how often a seeding call is tried (see `retried`).
SEED_CONCURRENCY = 4
SEED_ATTEMPTS = 3
CACHED_GROUP = "read-model-cached"
PASSWORD = "password-123"
FRESHNESS = "shop_read_model_freshness_seconds"
CACHE_READS = "shop_read_model_cache_reads_total"
CONFLICTS = "shop_read_model_write_conflicts_total"
NAN = float("nan")
# Waiting for the system: the seeded pages in both views, events settled after a load.
VIEWS_WAIT_SECONDS = 180.0
SETTLE_SECONDS = 120.0
# One reader's HTTP client: a fan-out has at most 3 calls in flight.
READER_LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=8)
# The client-side sample: the page polled this often; the sampler rests between samples,
# so its polling stays a small share of read model A's load.
POLL_SECONDS = 0.005
SAMPLE_REST_SECONDS = 0.1
SUBSCRIBERS = ("monolith", "member-service", "order-service", READ_MODEL)
CACHED = "read-model-cached"  # read model B's name here (its process is `shop run read-model`)
CLIENT = "bench"  # this process: the readers, and the fan-outs' composition
MACHINE = "machine"  # every core's busy time, whoever used it
# The CPU table's columns: process, heading.
CPU_COLUMNS = {
    CLIENT: "client",
    "gateway": "gateway",
    "member-service": "member",
    "order-service": "order",
    "payment-service": "payment",
    READ_MODEL: "view A",
    CACHED: "view B",
    "monolith": "monolith",
    BROKER: "broker",
}

Call = Callable[["Member"], Awaitable[Any]]
# One way to a page, as a reader's call: entered once per reader, and closed after its cells.
Way = Callable[[], contextlib.AbstractAsyncContextManager[Call]]
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    members: int
    orders: int
    seconds: float
    warmup: float
    rate: float
    freshness_seconds: float
    redis_url: str
    data_dir: str | None = None  # where the run's temporary data dir is made


@dataclass
class Member:
    id: int
    token: str
    orders: dict[int, str] = field(default_factory=dict)  # order id -> its final status

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Cell:
    row: str
    readers: int
    latencies: list[float]
    seconds: float
    failures: Counter[str] = field(default_factory=Counter)
    hit_ratio: float | None = None  # read model B's cache, over this cell
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by process, this cell

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.latencies)

    @property
    def p99_ms(self) -> float:
        return 1000 * percentile(self.latencies, 0.99)


@dataclass
class System:
    urls: dict[str, str]  # every process's base URL, read model B's as CACHED
    grpc: dict[str, str]  # each service's gRPC host:port
    token: str  # the admin token
    pids: dict[str, int]  # every process's, the broker's among them, for its CPU time
    outboxes: list[str]  # the URLs of the DBs with an outbox: the legacy DB, each service's


# --- starting the system --------------------------------------------------------------------


def start(data_dir: Path, plan: Plan) -> tuple[list[Supervisor], System]:
    """Every process, read model A among them, then read model B with its own port, DB,
    consumer group and Redis. A start that fails stops what had started."""
    base = load_settings()
    names = list(PROCESSES)
    free = iter(free_ports(len(names) + 2 + len(EXTRACTIONS)))
    ports = {name: next(free) for name in names}
    cached_port, broker_port = next(free), next(free)
    grpc_ports = {e.service.name: next(free) for e in EXTRACTIONS}
    env = {
        "SHOP_DATA_DIR": str(data_dir),
        "SHOP_LOG_LEVEL": "WARNING",  # no access log line paid for on any request
        "SHOP_BROKER_PORT": str(broker_port),
        **{PROCESSES[name].port_env: str(port) for name, port in ports.items()},
    }
    for extraction in EXTRACTIONS:
        variable = extraction.service.settings.variable("grpc_port")
        env[variable] = str(grpc_ports[extraction.service.name])
    settings = SharedSettings(
        data_dir=data_dir, broker_port=broker_port, kafka_bootstrap=base.kafka_bootstrap
    )
    cached_env = env | {
        PROCESSES[READ_MODEL].port_env: str(cached_port),
        "SHOP_READ_MODEL_DB_URL": f"sqlite:///{data_dir / 'read_model_cached.db'}",
        "SHOP_READ_MODEL_GROUP": CACHED_GROUP,
        "SHOP_REDIS_URL": plan.redis_url,
    }
    main = Supervisor(env, data_dir / "logs")
    cached = Supervisor(cached_env, data_dir / "logs-cached")
    supervisors = [main, cached]
    try:
        start_broker_if_embedded(main, settings)
        main.start_in_order(ports)
        cached.start(READ_MODEL, cached_port)
        cached.wait_ready()
    except BaseException:
        stop(supervisors)
        raise
    urls = {name: child.url for name, child in main.children.items()}
    urls[CACHED] = cached.children[READ_MODEL].url
    targets = {name: f"127.0.0.1:{port}" for name, port in grpc_ports.items()}
    pids = {name: child.process.pid for name, child in main.children.items()}
    pids[CACHED] = cached.children[READ_MODEL].process.pid
    outboxes = [settings.legacy_db_url, *(e.settings(data_dir=data_dir).db for e in EXTRACTIONS)]
    return supervisors, System(urls, targets, base.admin_token, pids, outboxes)


def stop(supervisors: list[Supervisor]) -> None:
    """Read model B first, then the rest (the broker last: Supervisor.stop)."""
    for supervisor in reversed(supervisors):
        codes = supervisor.stop()
        for name, code in codes.items():
            if code != 0:
                print(f"warning: {name} exited with {code}", file=sys.stderr)


def print_log_tails(supervisors: list[Supervisor]) -> None:
    for supervisor in supervisors:
        for child in supervisor.children.values():
            if tail := child.log_tail():
                print(f"--- {child.name} ({child.url}), its log's end:", file=sys.stderr)
                print(tail, file=sys.stderr)


def flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


def route_to_owners(system: System) -> list[str]:
    """Each extraction's gateway routes 100% to its service; the lines say what was set."""
    admin = AdminClient({"gateway": system.urls["gateway"]}, system.token)
    try:
        table = admin.route_table()
        owners = {route: e.service.name for e in EXTRACTIONS for route in e.routes}
        for route in table["routes"]:
            owner = owners.get(route["name"])
            if owner is not None:
                route["weights"] = dict.fromkeys(route["weights"], 0) | {owner: 100}
        admin.put_route_table(table, "read-model bench: every owner serves its routes")
        return [
            f"{route['name']} -> {owners[route['name']]} 100%"
            for route in admin.route_table()["routes"]
            if route["name"] in owners and route["weights"][owners[route["name"]]] == 100
        ]
    finally:
        admin.close()


# --- seeding ----------------------------------------------------------------------------------


class Stock:
    """Which product the next order takes: the one with the most stock left, so no product
    runs out while others still have plenty (the load places thousands of orders)."""

    def __init__(self, products: Iterable[dict[str, Any]]) -> None:
        self.left = {p["id"]: p["stock"] for p in products}

    def take(self) -> int:
        product = max(self.left, key=lambda p: self.left[p])
        self.left[product] -= 1
        return product


@dataclass
class Clients:
    """The keep-alive clients the seeding and the waits call the processes through."""

    member: httpx.AsyncClient
    order: httpx.AsyncClient
    payment: httpx.AsyncClient
    view_a: httpx.AsyncClient
    view_b: httpx.AsyncClient

    @classmethod
    def open(cls, urls: dict[str, str]) -> Clients:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)

        def client(name: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(base_url=urls[name], timeout=30, limits=limits)

        return cls(
            client("member-service"),
            client("order-service"),
            client("payment-service"),
            client(READ_MODEL),
            client(CACHED),
        )

    async def close(self) -> None:
        for client in (
            self.member,
            self.order,
            self.payment,
            self.view_a,
            self.view_b,
        ):
            await client.aclose()


async def products(monolith: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{monolith}/api/products", params={"limit": 100})
        return parse_envelope(answer)["items"]


async def sign_up(clients: Clients) -> Member:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Bench"}
    member_id = parse_envelope(await clients.member.post("/api/members", json=body))["id"]
    login = {"email": email, "password": PASSWORD}
    token = parse_envelope(await clients.member.post("/api/members/login", json=login))["token"]
    return Member(member_id, token)


async def place(orders: httpx.AsyncClient, member: Member, stock: Stock) -> int:
    body = {"items": [{"product_id": stock.take(), "quantity": 1}]}
    answer = await orders.post("/api/orders", json=body, headers=member.headers)
    return parse_envelope(answer)["id"]


async def pay(payments: httpx.AsyncClient, member: Member, order_id: int) -> None:
    headers = member.headers | {"Idempotency-Key": f"bench-pay-{order_id}"}
    body = {"order_id": order_id, "method": "card"}
    parse_envelope(await payments.post("/api/payments", json=body, headers=headers))


async def retried(call: Callable[[], Awaitable[T]], retries: Counter[str]) -> T:
    """`call()`, again after a 503 or 504 (the owner's time limit, a busy SQLite file), as a
    client would, at most SEED_ATTEMPTS times; each retry is counted and reported. Only for
    calls that are safe to repeat: a placing that timed out is given up by the order service,
    a payment carries its idempotency key."""
    for attempt in range(1, SEED_ATTEMPTS + 1):
        try:
            return await call()
        except ServiceError as exc:
            if exc.status not in (503, 504) or attempt == SEED_ATTEMPTS:
                raise
            retries[f"{exc.status} {exc.code}"] += 1
    raise AssertionError("unreachable")


async def seed_member(clients: Clients, stock: Stock, orders: int, retries: Counter[str]) -> Member:
    """A member with `orders` orders: the first 3 paid by card, the next cancelled, the rest
    left placed."""
    member = await sign_up(clients)
    for n in range(orders):
        order_id = await retried(lambda: place(clients.order, member, stock), retries)
        if n < PAID_PER_MEMBER:
            await retried(lambda: pay(clients.payment, member, order_id), retries)  # noqa: B023
            member.orders[order_id] = "PAID"
        elif n < PAID_PER_MEMBER + CANCELLED_PER_MEMBER:
            cancel = f"/api/orders/{order_id}/cancel"
            parse_envelope(await clients.order.post(cancel, headers=member.headers))
            member.orders[order_id] = "CANCELLED"
        else:
            member.orders[order_id] = "PLACED"
    return member


async def seed(clients: Clients, stock: Stock, plan: Plan, retries: Counter[str]) -> list[Member]:
    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def one() -> Member:
        async with gate:
            return await seed_member(clients, stock, plan.orders, retries)

    return list(await asyncio.gather(*(one() for _ in range(plan.members))))


def final(member: Member, page: dict[str, Any]) -> bool:
    """The page has every order of the member in its final state, a payment on each paid."""
    shown = {o["id"]: o for o in page["orders"]}
    for order_id, status in member.orders.items():
        entry = shown.get(order_id)
        if entry is None or entry["status"] != status:
            return False
        if (status == "PAID") != (entry["payment"] is not None):
            return False
    return True


async def view_of(http: httpx.AsyncClient, member: Member) -> dict[str, Any] | None:
    answer = await http.get("/api/views/my-page", headers=member.headers)
    return answer.json()["data"] if answer.status_code == 200 else None


async def views_final(clients: Clients, members: list[Member]) -> float:
    """Seconds until both read models show every member's page in its final state."""
    started = time.perf_counter()
    waiting = [(http, m) for http in (clients.view_a, clients.view_b) for m in members]
    while waiting:
        if time.perf_counter() - started > VIEWS_WAIT_SECONDS:
            raise RuntimeError(f"{len(waiting)} pages not final after {VIEWS_WAIT_SECONDS:g}s")
        pages = await asyncio.gather(*(view_of(http, m) for http, m in waiting))
        waiting = [
            (http, m)
            for (http, m), page in zip(waiting, pages, strict=True)
            if page is None or not final(m, page)
        ]
        if waiting:
            await asyncio.sleep(0.2)
    return time.perf_counter() - started


# --- the events settled: every outbox published, every consumer caught up -------------------


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def metrics(http: httpx.AsyncClient, url: str) -> str:
    return (await http.get(f"{url}/metrics")).text


async def settle(system: System) -> bool:
    """Every outbox row published and every consumer caught up, twice in a row half a second
    apart. The rows are counted in the DB files: a relay's backlog gauge keeps its last
    reading while the relay waits for a busy SQLite file, and would read 0 too early."""
    deadline, zero = time.monotonic() + SETTLE_SECONDS, 0
    async with httpx.AsyncClient(timeout=10) as http:
        while time.monotonic() < deadline:
            waiting = await asyncio.to_thread(unpublished, system.outboxes)
            lag = 0.0
            for name in (*SUBSCRIBERS, CACHED):
                text = await metrics(http, system.urls[name])
                lag += sum(v for _, v in samples(text, "shop_consumer_lag"))
            zero = zero + 1 if waiting == 0 and lag == 0 else 0
            if zero >= 2:
                return True
            await asyncio.sleep(0.5)
    return False


def unpublished(outboxes: list[str]) -> int:
    table = outbox_table(sa.MetaData())
    query = sa.select(sa.func.count()).where(table.c.published_at.is_(None))
    total = 0
    for url in outboxes:
        engine = make_engine(url)
        try:
            if sa.inspect(engine).has_table(table.name):
                with engine.connect() as conn:
                    total += conn.scalar(query.select_from(table)) or 0
        finally:
            engine.dispose()
    return total


# --- the four ways to a page ------------------------------------------------------------------


Read = Callable[[httpx.AsyncClient, Member], Awaitable[Any]]


def through(http: httpx.AsyncClient, read: Read) -> Call:
    """A reader's call: `read` on the reader's own client."""
    return lambda member: read(http, member)


async def view_page(http: httpx.AsyncClient, member: Member) -> Any:
    return parse_envelope(await http.get("/api/views/my-page", headers=member.headers))


async def fanout_page(http: httpx.AsyncClient, member: Member) -> Any:
    return await compose_my_page_http(http, member.token)


def ways(urls: dict[str, str], channels: Channels) -> dict[str, Way]:
    """Each way to a page, as one reader's call. Over HTTP every reader is a client of its
    own, as every browser or app is (HTTP/1.1 takes a connection per request in flight
    anyway): one client shared by 32 readers spends more CPU keeping its pool than on the
    requests. Over gRPC the readers share one channel per owner, as the channels are made to
    be shared (HTTP/2 multiplexes the calls)."""

    def over_http(base_url: str, read: Read) -> Way:
        @contextlib.asynccontextmanager
        async def reader() -> AsyncIterator[Call]:
            async with httpx.AsyncClient(
                base_url=base_url, timeout=30, limits=READER_LIMITS
            ) as http:
                yield through(http, read)

        return reader

    @contextlib.asynccontextmanager
    async def over_grpc() -> AsyncIterator[Call]:
        yield lambda member: compose_my_page_grpc(channels, member.id)

    return {
        VIEW_A: over_http(urls[READ_MODEL], view_page),
        VIEW_B: over_http(urls[CACHED], view_page),
        FANOUT_HTTP: over_http(urls["gateway"], fanout_page),
        FANOUT_GRPC: over_grpc,
    }


def compared(page: dict[str, Any]) -> dict[str, Any]:
    """What the four must agree on: the member, its points, each order's id, status, total
    and payment. Timestamps are left out: the views keep the events' occurred_at, fan-out the
    rows' created_at, a moment apart."""
    orders = [(o["id"], o["status"], o["total"], o["payment"]) for o in page["orders"]]
    return {"member": page["member"], "points": page["points"], "orders": orders}


async def same_page(ways: dict[str, Way], member: Member) -> list[str]:
    """The differences from the first way's page, field by field (none: all four agree)."""
    pages = {}
    for row, way in ways.items():
        async with way() as call:
            pages[row] = compared(await call(member))
    first, reference = next(iter(pages.items()))
    return [
        f"{row} differs from {first} in {key}: {page[key]!r} against {reference[key]!r}"
        for row, page in pages.items()
        for key in reference
        if page[key] != reference[key]
    ]


# --- timing -------------------------------------------------------------------------------------


def failure(exc: Exception) -> str:
    if isinstance(exc, ServiceError | ApiError):
        return f"{exc.status} {exc.code}"
    return type(exc).__name__


async def drive(row: str, calls: list[Call], members: list[Member], seconds: float) -> Cell:
    """A reader per call, all at once for `seconds`, each going round the members from its own
    starting point. A failed read counts at the time it took: a timeout is the tail."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    stop_at = time.perf_counter() + seconds

    async def reader(offset: int) -> None:
        for n in itertools.count(offset):
            if time.perf_counter() >= stop_at:
                return
            member = members[n % len(members)]
            started = time.perf_counter()
            try:
                await calls[offset](member)
            except (ServiceError, ApiError, httpx.HTTPError, grpc.aio.AioRpcError) as exc:
                failures[failure(exc)] += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(reader(r) for r in range(len(calls))))
    return Cell(row, len(calls), latencies, time.perf_counter() - started, failures)


def cpu_times(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) each process has used so far, this one as CLIENT; from
    /proc, so on Linux only (elsewhere: the client's alone)."""
    used = {CLIENT: time.process_time()}
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    with contextlib.suppress(OSError):
        # The whole machine's busy time (user, nice, system, irq, softirq, steal) over all
        # cores: what is left of it after the run's processes is other work on the machine.
        first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        busy = sum(int(first[i]) for i in (0, 1, 2, 5, 6, 7))
        used[MACHINE] = busy / ticks
    for name, pid in pids.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command's name: state, ppid...
        used[name] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return used


def cache_reads(text: str) -> Counter[str]:
    return Counter({labels["outcome"]: value for labels, value in samples(text, CACHE_READS)})


async def measure_reads(
    ways: dict[str, Way], members: list[Member], system: System, plan: Plan
) -> list[Cell]:
    """Every row at 1 reader, then every row at 32, each warmed up first (with the readers'
    connections it then keeps)."""
    cells = []
    async with httpx.AsyncClient(timeout=10) as http:
        for readers in READERS:
            for row, way in ways.items():
                async with contextlib.AsyncExitStack() as stack:
                    calls = [await stack.enter_async_context(way()) for _ in range(readers)]
                    await drive(row, calls, members, plan.warmup)
                    before = cache_reads(await metrics(http, system.urls[CACHED]))
                    cpu = cpu_times(system.pids)
                    cell = await drive(row, calls, members, plan.seconds)
                    used = cpu_times(system.pids)
                cell.cpu = {name: t - cpu[name] for name, t in used.items()}
                if row == VIEW_B:
                    reads = cache_reads(await metrics(http, system.urls[CACHED])) - before
                    cell.hit_ratio = reads["hit"] / (reads.total() or 1)
                cells.append(cell)
    return cells


async def health(http: httpx.AsyncClient, member: Member) -> None:
    (await http.get("/health/live")).raise_for_status()


async def refused(http: httpx.AsyncClient, member: Member) -> None:
    answer = await http.get("/api/views/my-page")  # no token: 401 from the token check
    if answer.status_code != 401:
        raise httpx.HTTPStatusError("expected 401", request=answer.request, response=answer)


FLOOR: dict[str, Read] = {
    "GET /health/live": health,
    "my page, no token (401)": refused,
    "my page": view_page,
}


async def measure_floor(url: str, members: list[Member], system: System, plan: Plan) -> list[Cell]:
    """Where a view read's cost goes: the HTTP stack's floor (a health check), the stack with
    the envelope and a refused token, then the whole read, one reader each."""
    cells = []
    for row, read in FLOOR.items():
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=READER_LIMITS) as http:
            calls = [through(http, read)]
            await drive(row, calls, members, plan.warmup)
            cpu = cpu_times(system.pids)
            cell = await drive(row, calls, members, plan.seconds)
            used = cpu_times(system.pids)
        cell.cpu = {name: t - cpu[name] for name, t in used.items()}
        cells.append(cell)
    return cells


# --- freshness ------------------------------------------------------------------------------------


@dataclass
class Load:
    scheduled: int = 0
    placed: int = 0
    paid: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0  # from the first order sent to the last order placed (its 201)
    sent_seconds: float = 0.0  # from the first order sent to the last
    end_to_end_ms: list[float] = field(default_factory=list)
    sample_timeouts: int = 0

    @property
    def achieved(self) -> float:
        return self.placed / self.seconds if self.seconds else 0.0


class Sampler:
    """From an order's 201 until it is on its member's page (read model A), one order at a
    time: while one is being watched, the other orders go unsampled."""

    def __init__(self, view: httpx.AsyncClient, load: Load) -> None:
        self.view, self.load, self.busy = view, load, False

    async def watch(self, member: Member, order_id: int, answered: float) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            while time.perf_counter() - answered < 10:
                page = await view_of(self.view, member)
                if page is not None and any(o["id"] == order_id for o in page["orders"]):
                    self.load.end_to_end_ms.append(1000 * (time.perf_counter() - answered))
                    break
                await asyncio.sleep(POLL_SECONDS)
            else:
                self.load.sample_timeouts += 1
            await asyncio.sleep(SAMPLE_REST_SECONDS)
        finally:
            self.busy = False


async def order_load(
    clients: Clients, members: list[Member], stock: Stock, system: System, plan: Plan
) -> Load:
    """Orders sent on a schedule, `rate` a second, each placed and every other one paid,
    whatever the ones before are still doing (open loop). Each member orders and pays
    through clients of its own, as each customer's app would."""
    load = Load(scheduled=int(plan.rate * plan.freshness_seconds))
    async with contextlib.AsyncExitStack() as stack:

        async def client(name: str) -> httpx.AsyncClient:
            made = httpx.AsyncClient(base_url=system.urls[name], timeout=30)
            return await stack.enter_async_context(made)

        own = {}
        for member in members:
            own[member.id] = (await client("order-service"), await client("payment-service"))
        await open_loop(own, Sampler(clients.view_a, load), members, stock, plan, load)
    return load


async def open_loop(
    own: dict[int, tuple[httpx.AsyncClient, httpx.AsyncClient]],
    sampler: Sampler,
    members: list[Member],
    stock: Stock,
    plan: Plan,
    load: Load,
) -> None:
    """Order `number` is sent at `number / rate` seconds from the start, into `load`."""
    last_placed = 0.0

    async def one(number: int) -> None:
        nonlocal last_placed
        member = members[number % len(members)]
        watching: asyncio.Task[None] | None = None
        step = "place"
        try:
            orders, payments = own[member.id]
            order_id = await place(orders, member, stock)
            last_placed = answered = time.perf_counter()
            load.placed += 1
            watching = asyncio.create_task(sampler.watch(member, order_id, answered))
            if number % 2 == 0:
                step = "pay"
                await pay(payments, member, order_id)
                load.paid += 1
        except (ServiceError, httpx.HTTPError) as exc:
            load.errors[f"{step} {failure(exc)}"] += 1
        if watching is not None:
            await watching

    tasks = []
    started = time.perf_counter()
    for number in range(load.scheduled):
        delay = started + number / plan.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(number)))
    load.sent_seconds = time.perf_counter() - started
    await asyncio.gather(*tasks)
    load.seconds = max(0.0, last_placed - started)


def buckets(text: str) -> dict[float, float]:
    """The freshness histogram's cumulative bucket counts, by upper bound."""
    return {float(labels["le"]): value for labels, value in samples(text, f"{FRESHNESS}_bucket")}


def quantile(cumulative: dict[float, float], q: float) -> float:
    """The q-quantile in seconds, linearly interpolated within its bucket (as Prometheus's
    histogram_quantile does); the largest finite bound if it falls in the +Inf bucket."""
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]]
    rank, below, lower = q * total, 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        below, lower = count, bound
    return lower


@dataclass
class Freshness:
    load: Load
    changes: float  # view changes observed by read model A's histogram in the run
    p50_ms: float
    p99_ms: float
    settled: bool
    relay_leg_ms: list[float] = field(default_factory=list)  # per event of the run
    consumed: dict[str, float] = field(default_factory=dict)  # read model A's, in the run


def relay_legs(outboxes: list[str], since: datetime) -> list[float]:
    """From each outbox row written since `since` to its being marked published (after the
    broker's acknowledgement): the relay's leg of the freshness, in ms. Read from the DB
    files once the run is over, as bench/events.py reads its own outbox."""
    legs = []
    table = outbox_table(sa.MetaData())
    for url in outboxes:
        engine = make_engine(url)
        try:
            if not sa.inspect(engine).has_table(table.name):
                continue
            query = sa.select(table.c.created_at, table.c.published_at).where(
                table.c.published_at.is_not(None)
            )
            with engine.connect() as conn:
                for created, published in conn.execute(query):
                    if aware(created) >= since:
                        legs.append(1000 * (aware(published) - aware(created)).total_seconds())
        finally:
            engine.dispose()
    return legs


def aware(moment: datetime) -> datetime:
    # SQLite hands DateTime(timezone=True) back naive: the relay and the outbox write UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def measure_freshness(
    clients: Clients, members: list[Member], stock: Stock, system: System, plan: Plan
) -> Freshness:
    async with httpx.AsyncClient(timeout=10) as http:
        text = await metrics(http, system.urls[READ_MODEL])
        before, consumed = buckets(text), consumer_counts(text)
        since = datetime.now(UTC)
        load = await order_load(clients, members, stock, system, plan)
        settled = await settle(system)
        text = await metrics(http, system.urls[READ_MODEL])
        after = buckets(text)
        consumed = {k: v - consumed.get(k, 0.0) for k, v in consumer_counts(text).items()}
    legs = await asyncio.to_thread(relay_legs, system.outboxes, since)
    run = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    changes = run[float("inf")]
    p50, p99 = (1000 * quantile(run, q) for q in (0.5, 0.99)) if changes else (NAN, NAN)
    return Freshness(load, changes, p50, p99, settled, legs, consumed)


def consumer_counts(text: str) -> dict[str, float]:
    """Read model A's consumer so far: its events by outcome, and its write conflicts."""
    counts = {labels["outcome"]: v for labels, v in samples(text, "shop_consumer_events_total")}
    counts["write conflicts"] = sum(v for _, v in samples(text, CONFLICTS))
    return counts


# --- the report ---------------------------------------------------------------------------------


def table(cells: list[Cell]) -> list[str]:
    by = {(c.row, c.readers): c for c in cells}
    head = "".join(f"{f'{n} reader' + ('s' if n > 1 else ''):>27}" for n in READERS)
    lines = [f"  {'my page':<16}{head}"]
    units = "".join(f"{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}" for _ in READERS)
    lines.append(f"  {'':<16}{units}")
    for row in ROWS:
        figures = "".join(
            f"{c.rate:>9.0f}{c.p50_ms:>9.2f}{c.p99_ms:>9.2f}"
            for c in (by[(row, n)] for n in READERS)
        )
        lines.append(f"  {row:<16}{figures}")
    return lines


def cpu_table(cells: list[Cell]) -> list[str]:
    """CPU milliseconds each process spent per page, and their sum: on 2 cores, what a page
    costs the machine bounds how many pages a second it can serve."""
    columns = [name for name in CPU_COLUMNS if any(name in c.cpu for c in cells)]
    head = "".join(f"{CPU_COLUMNS[name]:>9}" for name in columns)
    lines = [f"  {'CPU ms per page':<16}{'readers':>8}{head}{'total':>9}{'cores':>7}{'others':>8}"]
    for c in cells:
        pages = len(c.latencies) or 1
        figures = "".join(f"{1000 * c.cpu.get(name, 0.0) / pages:>9.2f}" for name in columns)
        total = sum(c.cpu.get(name, 0.0) for name in columns)
        others = f"{(c.cpu[MACHINE] - total) / c.seconds:>8.2f}" if MACHINE in c.cpu else ""
        lines.append(
            f"  {c.row:<16}{c.readers:>8}{figures}{1000 * total / pages:>9.2f}"
            f"{total / c.seconds:>7.2f}{others}"
        )
    lines.append(
        "  cores: the run's processes' CPU over the cell's time; others: the cores the rest "
        f"of the machine's work took meanwhile (of {os.cpu_count()})"
    )
    return lines


def floor_table(cells: list[Cell]) -> list[str]:
    head = f"{'req/s':>8}{'p50 ms':>8}{'server CPU ms':>15}{'client CPU ms':>15}{'others':>8}"
    lines = [f"  {'':<26}{head}"]
    for c in cells:
        pages = len(c.latencies) or 1
        server, client = (1000 * c.cpu.get(name, 0.0) / pages for name in (READ_MODEL, CLIENT))
        ours = sum(c.cpu.get(name, 0.0) for name in CPU_COLUMNS)
        others = f"{(c.cpu[MACHINE] - ours) / c.seconds:>8.2f}" if MACHINE in c.cpu else ""
        lines.append(
            f"  {c.row:<26}{c.rate:>8.0f}{c.p50_ms:>8.2f}{server:>15.2f}{client:>15.2f}{others}"
        )
    return lines


def notes(cells: list[Cell], paid: int) -> list[str]:
    lines = [
        f"  {FANOUT_HTTP}: through the gateway, 2 + {paid} paid orders = {2 + paid} calls per "
        "page (GET /api/members/me with /api/orders?limit=20, then /api/payments?order_id=N "
        "per paid order)",
        f"  {FANOUT_GRPC}: 3 calls per page (GetMember with ListOrders, then ListPayments)",
    ]
    for c in cells:
        if c.hit_ratio is not None:
            lines.append(f"  {VIEW_B}, {c.readers:>2} readers: cache hit ratio {c.hit_ratio:.3f}")
    for c in (c for c in cells if c.failures):
        kinds = ", ".join(f"{kind} x{n}" for kind, n in c.failures.most_common())
        lines.append(f"  {c.row}, {c.readers} readers: {c.failures.total()} failed ({kinds})")
    return lines


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def comparisons(cells: list[Cell]) -> tuple[list[str], list[str]]:
    """The ratios of each view to the best fan-out (the higher pages/s, the lower p99 of the
    two), and the targets' verdicts."""
    by = {(c.row, c.readers): c for c in cells}
    ratios, targets = [], []
    for n in READERS:
        fastest = max((by[(row, n)] for row in FANOUTS), key=lambda c: c.rate)
        steadiest = min((by[(row, n)] for row in FANOUTS), key=lambda c: c.p99_ms)
        for row in VIEWS:
            view = by[(row, n)]
            throughput = view.rate / fastest.rate
            p99 = view.p99_ms / steadiest.p99_ms
            http = by[(FANOUT_HTTP, n)]
            ratios.append(
                f"  {n:>2} readers, {row:<15} throughput {throughput:6.2f}x {fastest.row}'s, "
                f"p99 {p99:5.2f}x {steadiest.row}'s   (against {FANOUT_HTTP}: "
                f"{view.rate / http.rate:.2f}x, p99 {view.p99_ms / http.p99_ms:.2f}x)"
            )
            targets.append(
                f"  {n:>2} readers, {row:<15} throughput >= {TARGET_THROUGHPUT:g}x the "
                f"fan-out's: {throughput:.2f}x {verdict(throughput >= TARGET_THROUGHPUT)}; "
                f"p99 <= {TARGET_P99_SHARE:g}x: {p99:.2f}x {verdict(p99 <= TARGET_P99_SHARE)}"
            )
    return ratios, targets


def freshness_lines(f: Freshness, plan: Plan) -> list[str]:
    load = f.load
    errors = ", ".join(f"{kind} x{n}" for kind, n in load.errors.most_common()) or "none"
    lines = [
        f"  {load.scheduled} orders sent on a schedule of {plan.rate:g}/s over "
        f"{plan.freshness_seconds:g} s (all sent in {load.sent_seconds:.2f} s): {load.placed} "
        f"placed, {load.paid} of them paid; errors: {errors}",
        f"  achieved {load.achieved:.0f} orders/s (placed / time from the first sent to the "
        "last placed)",
        f"  read model A, shop_read_model_freshness_seconds over the run's {f.changes:.0f} view "
        f"changes (interpolated from buckets): p50 {f.p50_ms:.1f} ms, p99 {f.p99_ms:.1f} ms"
        + ("" if f.settled else "  (the events had not settled when it was read)"),
    ]
    legs = f.relay_leg_ms
    lines.append(
        f"    of which the relay's leg, outbox row written -> marked published, over the "
        f"run's {len(legs)} events: p50 {percentile(legs, 0.5):.1f} ms, p99 "
        f"{percentile(legs, 0.99):.1f} ms"
        if legs
        else "    the relay's leg: no outbox row of the run found marked published"
    )
    consumed = ", ".join(f"{kind} {n:.0f}" for kind, n in sorted(f.consumed.items()))
    lines.append(f"    read model A's consumer in the run: {consumed or 'nothing'}")
    if load.end_to_end_ms:
        e2e = load.end_to_end_ms
        unseen = f", {load.sample_timeouts} not seen within 10 s" if load.sample_timeouts else ""
        lines.append(
            f"  end to end from the client, an order's 201 until it is on its page (read "
            f"model A, polled every {1000 * POLL_SECONDS:g} ms), {len(e2e)} sampled: "
            f"p50 {percentile(e2e, 0.5):.1f} ms, p99 {percentile(e2e, 0.99):.1f} ms, max "
            f"{max(e2e):.1f} ms{unseen}"
        )
    return lines


def freshness_target(f: Freshness) -> str:
    reached = f.load.achieved >= 0.95 * TARGET_RATE
    fresh = f.p99_ms <= TARGET_FRESHNESS_MS
    why = (
        ""
        if reached
        else f" (the load reached {f.load.achieved:.0f} orders/s, not {TARGET_RATE:g}: "
        "not shown at the target's rate)"
    )
    return (
        f"  freshness p99 <= {TARGET_FRESHNESS_MS:g} ms at {TARGET_RATE:g} orders/s: "
        f"{f.p99_ms:.1f} ms at {f.load.achieved:.0f} orders/s "
        f"{verdict(reached and fresh)}{why}"
    )


# --- the run --------------------------------------------------------------------------------------


async def bench(system: System, plan: Plan) -> int:
    print("gateway routes: " + ", ".join(route_to_owners(system)))
    clients = Clients.open(system.urls)
    channels = Channels.open(
        system.grpc["member-service"],
        system.grpc["order-service"],
        system.grpc["payment-service"],
        deadline=10.0,
    )
    try:
        stock = Stock(await products(system.urls["monolith"]))
        started, retries = time.perf_counter(), Counter[str]()
        members = await seed(clients, stock, plan, retries)
        seeded = time.perf_counter() - started
        waited = await views_final(clients, members)
        settled = await settle(system)
        paid = sum(status == "PAID" for status in members[0].orders.values())
        print(
            f"seeded {len(members)} members x {plan.orders} orders ({paid} paid by card, "
            f"{CANCELLED_PER_MEMBER} cancelled) in {seeded:.1f} s; both read models final "
            f"{waited:.1f} s later; events settled: {'yes' if settled else 'NO'}"
        )
        if retries:
            kinds = ", ".join(f"{kind} x{n}" for kind, n in retries.most_common())
            print(f"  seeding calls retried after the owner's refusal: {kinds}")
        pages = ways(system.urls, channels)
        differences = await same_page(pages, members[0])
        if differences:
            print("same page check FAILED, nothing timed:\n  " + "\n  ".join(differences))
            return 1
        print(
            f"same page check: member {members[0].id} ({len(members[0].orders)} orders, {paid} "
            f"payments): {', '.join(pages)} agree on the member, its points and each order's "
            "id, status, total and payment (timestamps not compared)"
        )
        cells = await measure_reads(pages, members, system, plan)
        floor = await measure_floor(system.urls[READ_MODEL], members, system, plan)
        fresh = await measure_freshness(clients, members, stock, system, plan)
    finally:
        await channels.close()
        await clients.close()
    print(
        f"\nmy page, {len(members)} members, {plan.seconds:g} s per cell after "
        f"{plan.warmup:g} s of warm-up"
    )
    print("\n".join(table(cells)))
    print("\n".join(notes(cells, paid)))
    print()
    print("\n".join(cpu_table(cells)))
    print(f"\nwhat one read costs read model A, 1 reader, {plan.seconds:g} s each")
    print("\n".join(floor_table(floor)))
    ratios, targets = comparisons(cells)
    print("\nviews against the best fan-out (higher req/s, lower p99 of the two)")
    print("\n".join(ratios))
    print("\nfreshness")
    print("\n".join(freshness_lines(fresh, plan)))
    print("\ntargets")
    print("\n".join([*targets, freshness_target(fresh)]))
    print("\n" + machine_line())
    return 0


def run(plan: Plan) -> int:
    flush_redis(plan.redis_url)
    with tempfile.TemporaryDirectory(prefix="read-model-bench-", dir=plan.data_dir) as data_dir:
        supervisors, system = start(Path(data_dir), plan)
        broker = system.urls.get(BROKER, "SHOP_KAFKA_BOOTSTRAP's")
        print(
            f"SQLite files in {data_dir} (each read model's views beside its own DB), events "
            f"through the broker at {broker}"
        )
        try:
            return asyncio.run(bench(system, plan))
        except Exception:
            print_log_tails(supervisors)  # the data dir goes with the run
            raise
        finally:
            stop(supervisors)
            flush_redis(plan.redis_url)


def parse(argv: list[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--orders", type=int, default=5, help="orders per member")
    parser.add_argument("--seconds", type=float, default=5.0, help="per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds, before each cell")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="orders/s")
    parser.add_argument("--freshness-seconds", type=float, default=10.0)
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/14",
        help="read model B's Redis database (flushed before and after the run)",
    )
    parser.add_argument(
        "--data-dir",
        help="where the run's SQLite files go (a temporary dir in it; default: the system's "
        "temporary dir); /dev/shm takes the disk's fsync out of every commit",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few members, 1 s cells, 20 orders/s for 2 s: that it runs, not what it says",
    )
    args = parser.parse_args(argv)
    if args.quick:
        return Plan(4, args.orders, 1.0, 0.3, 20.0, 2.0, args.redis, args.data_dir)
    return Plan(
        args.members,
        args.orders,
        args.seconds,
        args.warmup,
        args.rate,
        args.freshness_seconds,
        args.redis,
        args.data_dir,
    )


def main() -> int:
    return run(parse())


if __name__ == "__main__":
    raise SystemExit(main())
