"""One core call over gRPC and over HTTP/JSON, same handler and same DB, side by side in one
run: the talk says gRPC is faster between core services; this says by how much here.

    .venv/bin/python bench/core_calls.py [--calls 2000] [--rounds 3]

Starts the monolith (its migrations create the legacy DB) and the member service with
`shop run`, on SQLite in a temporary data dir, signs a member up, then looks the member up:

- gRPC: `MemberService.GetMember(member_id)` on one grpc.aio channel, with a deadline;
- HTTP: `GET /api/members/me` with the member's token on one httpx.AsyncClient (keep-alive).

Both end in `services.member.service_layer.members.profile` reading the same row. The HTTP
side also runs what every HTTP request here runs (token check, envelope, request id, metrics,
time limit); that is the price of the HTTP path as the system has it. Both processes log at
WARNING, so neither pays for an access log line. At 1 and 16 concurrent callers, the two
protocols interleaved `--rounds` times; prints the median round's p50, p99 and calls/s, and
gRPC's p50 as a share of HTTP's against the target. A script, not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.extractions import MEMBERS  # noqa: E402
from infra.supervisor import Supervisor, free_port  # noqa: E402
from protos.shop.member.v1 import member_pb2, member_pb2_grpc  # noqa: E402

TARGET_P50_SHARE = 0.5  # gRPC's p50 at most half of HTTP's
CONCURRENCY = (1, 16)
WARMUP_CALLS = 200


@dataclass
class Result:
    protocol: str
    callers: int
    latencies: list[float]
    seconds: float

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


async def drive(call: Callable[[], Awaitable[None]], calls: int, callers: int) -> tuple:
    latencies: list[float] = []
    left = calls

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return latencies, time.perf_counter() - started


async def measure(http_url: str, grpc_target: str, calls: int, rounds: int) -> list[Result]:
    async with httpx.AsyncClient(base_url=http_url, timeout=10) as http:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": "password-123", "name": "Bench"}
        member_id = (await http.post("/api/members", json=body)).json()["data"]["id"]
        login = {"email": email, "password": "password-123"}
        token = (await http.post("/api/members/login", json=login)).json()["data"]["token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with grpc.aio.insecure_channel(grpc_target) as channel:
            stub = member_pb2_grpc.MemberServiceStub(channel)
            request = member_pb2.GetMemberRequest(member_id=member_id)

            async def over_grpc() -> None:
                member = await stub.GetMember(request, timeout=5)
                assert member.id == member_id

            async def over_http() -> None:
                answer = await http.get("/api/members/me", headers=headers)
                assert answer.status_code == 200 and answer.json()["data"]["id"] == member_id

            calls_of = {"gRPC": over_grpc, "HTTP": over_http}
            for call in calls_of.values():
                await drive(call, WARMUP_CALLS, 4)
            runs: dict[tuple[str, int], list[Result]] = {}
            for _ in range(rounds):
                for callers in CONCURRENCY:
                    for protocol, call in calls_of.items():
                        latencies, seconds = await drive(call, calls, callers)
                        result = Result(protocol, callers, latencies, seconds)
                        runs.setdefault((protocol, callers), []).append(result)
    # The median round by p50, per protocol and concurrency.
    return [sorted(r, key=lambda x: x.p50_ms)[len(r) // 2] for r in runs.values()]


def report(results: list[Result], calls: int, rounds: int) -> None:
    print(f"\nMember lookup, {calls} calls per run, median of {rounds} rounds")
    print(f"  {'callers':>7}  {'protocol':<8} {'p50 ms':>8} {'p99 ms':>8} {'calls/s':>9}")
    by = {(r.protocol, r.callers): r for r in results}
    for callers in CONCURRENCY:
        for protocol in ("gRPC", "HTTP"):
            r = by[(protocol, callers)]
            print(f"  {callers:>7}  {protocol:<8} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.rate:>9.0f}")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="core-calls-") as data_dir:
        grpc_port = free_port()
        env = {
            "SHOP_DATA_DIR": data_dir,
            "SHOP_LOG_LEVEL": "WARNING",
            "SHOP_KAFKA_BOOTSTRAP": "127.0.0.1:9",  # no broker: nothing here publishes
            MEMBERS.service.settings.variable("grpc_port"): str(grpc_port),
        }
        supervisor = Supervisor(env, Path(data_dir) / "logs")
        ports = {"monolith": free_port(), "member-service": free_port()}
        try:
            supervisor.start_in_order(ports)
            http_url = supervisor.children["member-service"].url
            results = asyncio.run(
                measure(http_url, f"127.0.0.1:{grpc_port}", args.calls, args.rounds)
            )
        finally:
            supervisor.stop()
    report(results, args.calls, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
