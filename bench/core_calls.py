"""The core calls over gRPC and over HTTP/JSON, same handler and same DB, side by side in one
run: the talk says gRPC is faster between core services; this says by how much here.

    .venv/bin/python bench/core_calls.py [--calls 2000] [--rounds 3] [--warmup 200]

Starts the monolith (its migrations create the legacy DB), the member service and the order
service with `shop run`, on SQLite in a temporary data dir, signs a member up, places a few
orders for it at the order service, and compares three calls:

- member lookup: `GetMember` against `GET /api/members/me` (members.profile);
- order lookup, the payment's read of its order: `GetOrder(order_id, member_id)` against
  `GET /api/orders/{id}` on the order service (orders.get_order), round the orders placed;
- points spend, the payment's debit: `SpendPoints` against a POST of its fields as JSON
  (points.spend), one point a call, each with a key of its own so each one debits (the
  member is credited first; its balance is 0 at the end). The member service has no HTTP
  spend route and gets none: the HTTP side is this script's own (`serve_spend`), a second
  member-service process built by the same extraction runtime from the same settings (same
  DB files, same data mode), the service's HTTP stack with the bench's route instead of its
  own. The batch sync job tolerates a second instance.

gRPC goes over one grpc.aio channel per service, every call with a deadline; HTTP over one
keep-alive httpx.AsyncClient per process, and also runs what every HTTP request here runs
(envelope, request id, metrics, time limit; the lookups' bearer token check): the price of
the HTTP path as the system has it. Every process logs at WARNING, so none pays for an access
log line. At 1 and 16 concurrent callers, the two protocols interleaved `--rounds` times;
prints per call the median round's p50, p99 and calls/s, and gRPC's p50 as a share of HTTP's
against the target. A script, not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import grpc
import httpx
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.extractions import MEMBERS, ORDERS  # noqa: E402
from infra.processes import PROCESSES  # noqa: E402
from infra.supervisor import Child, Supervisor, free_ports  # noqa: E402
from libs.events.envelope import Event  # noqa: E402
from libs.extraction import create_extraction_app  # noqa: E402
from libs.observability import configure_logging, serve  # noqa: E402
from libs.response import ok  # noqa: E402
from protos.shop.member.v1 import member_pb2, member_pb2_grpc  # noqa: E402
from protos.shop.order.v1 import order_pb2, order_pb2_grpc  # noqa: E402
from services.member.adapters.migrate import upgrade as upgrade_member_db  # noqa: E402
from services.member.client import CHANNEL_OPTIONS  # noqa: E402
from services.member.entrypoints.deps import DataDep  # noqa: E402
from services.member.service_layer import commands, points  # noqa: E402

TARGET_P50_SHARE = 0.5  # gRPC's p50 at most half of HTTP's
CONCURRENCY = (1, 16)
WARMUP_CALLS = 200  # per protocol and call, before the first round
ORDERS_PLACED = 20  # the order lookups go round these
SPEND_PROCESS = "member-spend-http"
PROCESS_NAMES = ("monolith", "member-service", "order-service")
PASSWORD = "password-123"
DEADLINE = 5.0  # seconds, every gRPC call; HTTP's is the service's own 5 s limit (a 504)

Call = Callable[[], Awaitable[None]]


@dataclass
class Result:
    protocol: str
    callers: int
    latencies: list[float]
    seconds: float
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.latencies)

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


class CallFailed(Exception):
    """An error answer over HTTP: counted like a gRPC error, not fatal to the run."""


def data_of(answer: httpx.Response) -> dict:
    if answer.status_code != 200:
        error = answer.json().get("error") or {}
        raise CallFailed(f"HTTP {answer.status_code} {error.get('code')}")
    return answer.json()["data"]


async def drive(protocol: str, call: Call, calls: int, callers: int) -> Result:
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    left = calls

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            try:
                await call()
            except CallFailed as exc:
                failures[str(exc)] += 1
            except grpc.aio.AioRpcError as exc:
                failures[exc.code().name] += 1
            # A failed call counts at the time it took: a timeout is the tail, not a gap.
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return Result(protocol, callers, latencies, time.perf_counter() - started, failures)


@dataclass(frozen=True)
class Plan:
    calls: int  # per run: one protocol at one concurrency in one round
    rounds: int
    warmup: int = WARMUP_CALLS

    @property
    def calls_per_protocol(self) -> int:
        return self.warmup + self.rounds * len(CONCURRENCY) * self.calls


async def compare(calls_of: dict[str, Call], plan: Plan) -> list[Result]:
    """Both protocols warmed up, then interleaved per round and concurrency, so a drift of the
    machine (another process, SQLite's file growing) falls on both alike."""
    for protocol, call in calls_of.items():
        await drive(protocol, call, plan.warmup, 4)
    runs: dict[tuple[str, int], list[Result]] = {}
    for _ in range(plan.rounds):
        for callers in CONCURRENCY:
            for protocol, call in calls_of.items():
                result = await drive(protocol, call, plan.calls, callers)
                runs.setdefault((protocol, callers), []).append(result)
    # The median round by p50, per protocol and concurrency, with every round's failures.
    picked = []
    for r in runs.values():
        median = sorted(r, key=lambda x: x.p50_ms)[len(r) // 2]
        picked.append(replace(median, failures=sum((x.failures for x in r), Counter())))
    return picked


@dataclass
class Member:
    id: int
    headers: dict[str, str]  # its bearer token


async def sign_up(http: httpx.AsyncClient) -> Member:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Bench"}
    member_id = (await http.post("/api/members", json=body)).json()["data"]["id"]
    login = {"email": email, "password": PASSWORD}
    token = (await http.post("/api/members/login", json=login)).json()["data"]["token"]
    return Member(member_id, {"Authorization": f"Bearer {token}"})


def member_lookup(member: Member, http: httpx.AsyncClient, channel) -> dict[str, Call]:
    stub = member_pb2_grpc.MemberServiceStub(channel)
    request = member_pb2.GetMemberRequest(member_id=member.id)

    async def over_grpc() -> None:
        found = await stub.GetMember(request, timeout=DEADLINE)
        assert found.id == member.id

    async def over_http() -> None:
        answer = await http.get("/api/members/me", headers=member.headers)
        assert data_of(answer)["id"] == member.id

    return {"gRPC": over_grpc, "HTTP": over_http}


async def place_orders(monolith: str, member: Member, http: httpx.AsyncClient) -> list[int]:
    """Orders of one line each, placed through the order service (stock held at the
    monolith's catalogue), as a payment would then look them up."""
    products = (await http.get(f"{monolith}/api/products")).json()["data"]["items"]
    body = {"items": [{"product_id": products[0]["id"], "quantity": 1}]}
    ids = []
    for _ in range(ORDERS_PLACED):
        placed = await http.post("/api/orders", json=body, headers=member.headers)
        assert placed.status_code == 201, placed.text
        ids.append(placed.json()["data"]["id"])
    return ids


def order_lookup(
    member: Member, order_ids: list[int], http: httpx.AsyncClient, channel
) -> dict[str, Call]:
    stub = order_pb2_grpc.OrderServiceStub(channel)
    requests = itertools.cycle(
        [order_pb2.GetOrderRequest(order_id=i, member_id=member.id) for i in order_ids]
    )
    paths = itertools.cycle([(i, f"/api/orders/{i}") for i in order_ids])

    async def over_grpc() -> None:
        request = next(requests)
        found = await stub.GetOrder(request, timeout=DEADLINE)
        assert found.id == request.order_id and found.lines

    async def over_http() -> None:
        order_id, path = next(paths)
        answer = await http.get(path, headers=member.headers)
        assert data_of(answer)["id"] == order_id

    return {"gRPC": over_grpc, "HTTP": over_http}


def points_spend(member: Member, http: httpx.AsyncClient, channel) -> dict[str, Call]:
    stub = member_pb2_grpc.MemberServiceStub(channel)
    keys = (f"bench-spend-{n:09d}" for n in itertools.count())  # fresh: every call debits

    async def over_grpc() -> None:
        request = member_pb2.SpendPointsRequest(member_id=member.id, amount=1, key=next(keys))
        spent = await stub.SpendPoints(request, timeout=DEADLINE)
        assert spent.applied and spent.spent == 1

    async def over_http() -> None:
        body = {"member_id": member.id, "amount": 1, "key": next(keys)}
        spent = data_of(await http.post(SPEND_PATH, json=body))
        assert spent["applied"] and spent["spent"] == 1

    return {"gRPC": over_grpc, "HTTP": over_http}


async def measure(
    urls: dict[str, str], targets: dict[str, str], plan: Plan
) -> list[tuple[str, list[Result]]]:
    """`urls`: each process's HTTP base URL; `targets`: the services' gRPC host:port."""
    async with (
        httpx.AsyncClient(base_url=urls["member-service"], timeout=10) as member_http,
        httpx.AsyncClient(base_url=urls["order-service"], timeout=10) as order_http,
        httpx.AsyncClient(base_url=urls[SPEND_PROCESS], timeout=10) as spend_http,
        grpc.aio.insecure_channel(targets["member-service"], options=CHANNEL_OPTIONS) as member,
        grpc.aio.insecure_channel(targets["order-service"], options=CHANNEL_OPTIONS) as order,
    ):
        buyer = await sign_up(member_http)
        order_ids = await place_orders(urls["monolith"], buyer, order_http)
        credit = {"member_id": buyer.id, "points": 2 * plan.calls_per_protocol}
        assert (await spend_http.post(CREDIT_PATH, json=credit)).status_code == 200
        compared = {
            "Member lookup": member_lookup(buyer, member_http, member),
            "Order lookup (the payment's GetOrder)": order_lookup(
                buyer, order_ids, order_http, order
            ),
            "Points spend (the payment's SpendPoints)": points_spend(buyer, spend_http, member),
        }
        return [(title, await compare(pair, plan)) for title, pair in compared.items()]


def report(title: str, results: list[Result], plan: Plan) -> None:
    print(f"\n{title}, {plan.calls} calls per run, median of {plan.rounds} rounds")
    print(f"  {'callers':>7}  {'protocol':<8} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9}")
    by = {(r.protocol, r.callers): r for r in results}
    for callers in CONCURRENCY:
        for protocol in ("gRPC", "HTTP"):
            r = by[(protocol, callers)]
            print(f"  {callers:>7}  {protocol:<8} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.rate:>9.0f}")
    for r in (r for r in results if r.failures):
        kinds = ", ".join(f"{kind} x{n}" for kind, n in r.failures.most_common())
        print(
            f"  {r.callers:>7}  {r.protocol:<8} failed {r.failures.total()} of "
            f"{plan.calls * plan.rounds} calls over the rounds: {kinds}"
        )
    print("\ngRPC against HTTP")
    for callers in CONCURRENCY:
        grpc_r, http_r = by[("gRPC", callers)], by[("HTTP", callers)]
        share = grpc_r.p50_ms / http_r.p50_ms
        verdict = "meets" if share <= TARGET_P50_SHARE else "misses"
        print(
            f"  {callers:>2} callers: p50 {share:.2f}x HTTP's ({verdict} the target "
            f"{TARGET_P50_SHARE}x), p99 {grpc_r.p99_ms / http_r.p99_ms:.2f}x, "
            f"calls/s {grpc_r.rate / http_r.rate:.2f}x"
        )


# --- the HTTP side of the spend: this script's own app, never a route of the service ---

SPEND_PATH = "/bench/points/spend"
CREDIT_PATH = "/bench/points/credit"
Positive = Annotated[int, Field(ge=1)]


class SpendIn(BaseModel):
    """SpendPointsRequest's fields, as JSON; the handler judges amount, key and reason."""

    model_config = ConfigDict(extra="forbid", strict=True)
    member_id: Positive
    amount: int
    key: str
    reason: str = points.SPEND


class CreditIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    member_id: Positive
    points: Positive


bench_routes = APIRouter()


@bench_routes.post(SPEND_PATH)
def spend(body: SpendIn, data: DataDep):
    cmd = commands.SpendPoints(body.member_id, body.amount, body.key, body.reason)
    return ok(points.spend(cmd, data))


@bench_routes.post(CREDIT_PATH)
def credit(body: CreditIn, data: DataDep):
    """Points the way a card payment's PaymentCompleted gives them, through the data door."""
    payment_id = 10**9 + uuid.uuid4().int % 10**8
    fields = {"member_id": body.member_id, "payment_id": payment_id, "points_earned": body.points}
    event = Event("PaymentCompleted", "payment", str(payment_id), 1, fields)
    return ok({"applied": points.apply_payment_event(event, data)})


def serve_spend(port: int) -> None:
    """The member service's extraction app (data door, envelope, metrics, time limit) from
    the member service's own settings, with the bench's routes instead of its own; no gRPC
    server, no consumer: they are the other process's."""
    settings = PROCESSES["member-service"].load()
    configure_logging(SPEND_PROCESS, settings.log_level, settings.log_json)
    app = create_extraction_app(MEMBERS.config(settings, upgrade_member_db), [bench_routes])
    serve(
        app,
        host=settings.host,
        port=port,
        readiness=app.state.readiness,
        grace_seconds=settings.shutdown_grace_seconds,
    )


# --- start-up ---


def answers(child: Child) -> bool:
    try:
        return httpx.get(f"{child.url}/health/ready", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_spend_process(supervisor: Supervisor, port: int) -> None:
    """This script again, as the HTTP spend side, supervised (and stopped) like the rest."""
    supervisor.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = supervisor.log_dir / f"{SPEND_PROCESS}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve-spend", str(port)],
            env={**os.environ, **supervisor.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    child = Child(SPEND_PROCESS, port, process, log_path, f"http://127.0.0.1:{port}", answers)
    supervisor.children[SPEND_PROCESS] = child
    supervisor.wait_ready()


def environment(data_dir: str, ports: dict[str, int], grpc_ports: dict[str, int]) -> dict:
    """Every process's port in the environment, so each finds the others through the process
    registry (the order service its catalogue, the monolith)."""
    env = {
        "SHOP_DATA_DIR": data_dir,
        "SHOP_LOG_LEVEL": "WARNING",
        "SHOP_KAFKA_BOOTSTRAP": "127.0.0.1:9",  # no broker: no event is needed here
    }
    env |= {PROCESSES[name].port_env: str(port) for name, port in ports.items()}
    for extraction in (MEMBERS, ORDERS):
        variable = extraction.service.settings.variable("grpc_port")
        env[variable] = str(grpc_ports[extraction.service.name])
    return env


def run(plan: Plan) -> list[tuple[str, list[Result]]]:
    with tempfile.TemporaryDirectory(prefix="core-calls-") as data_dir:
        free = iter(free_ports(len(PROCESS_NAMES) + 3))  # held at once: all distinct
        ports = {name: next(free) for name in PROCESS_NAMES}
        grpc_ports = {name: next(free) for name in ("member-service", "order-service")}
        env = environment(data_dir, ports, grpc_ports)
        supervisor = Supervisor(env, Path(data_dir) / "logs")
        try:
            supervisor.start_in_order(ports)
            start_spend_process(supervisor, next(free))
            urls = {name: child.url for name, child in supervisor.children.items()}
            targets = {name: f"127.0.0.1:{port}" for name, port in grpc_ports.items()}
            return asyncio.run(measure(urls, targets, plan))
        finally:
            supervisor.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=WARMUP_CALLS, help="calls per protocol")
    parser.add_argument("--serve-spend", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_spend:
        serve_spend(args.serve_spend)
        return 0
    plan = Plan(args.calls, args.rounds, args.warmup)
    for title, results in run(plan):
        report(title, results, plan)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
