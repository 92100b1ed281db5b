"""A points debit is a gRPC call made for a request: its deadline is what the request has
left, not the call's configured 2 s. Against a real gRPC server standing in for a member
service that has become slow, on a real socket."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import httpx
import pytest

from infra.settings import DEV_ADMIN_TOKEN, Settings
from infra.supervisor import free_port
from monolith.entrypoints.app import create_app
from protos.shop.member.v1 import member_pb2, member_pb2_grpc
from tests.support.brokers import NO_BROKER
from tests.support.servers import serving

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}


class SlowMemberService(member_pb2_grpc.MemberServiceServicer):
    """Answers a spend only after `delay` seconds; notes each call's deadline on arrival."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.spend_deadlines: list[float] = []
        self.cancelled: list[str] = []
        self.released = threading.Event()

    def SpendPoints(self, request, context):
        self.spend_deadlines.append(context.time_remaining())
        self.released.wait(self.delay)
        return member_pb2.SpendPointsResponse(balance=0, spent=request.amount, applied=True)

    def CancelSpend(self, request, context):
        self.cancelled.append(request.key)
        return member_pb2.CancelSpendResponse(balance=0, restored=0, applied=True)


@pytest.fixture
def slow_member() -> Iterator[tuple[SlowMemberService, str]]:
    servicer = SlowMemberService(delay=3.0)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    member_pb2_grpc.add_MemberServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        servicer.released.set()
        server.stop(0)


@contextmanager
def points_payer(
    target: str, tmp_path
) -> Iterator[tuple[httpx.Client, Callable[[dict[str, str]], httpx.Response]]]:
    """The monolith with points owned by the member service at `target`; yields its client
    and a function that places an order for a new member and pays it with points, with these
    headers."""
    settings = Settings(
        data_dir=tmp_path,
        kafka_bootstrap=NO_BROKER,
        monolith_member_grpc=target,
        monolith_member_timeout=2.0,
    )
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=10) as http:
        features = {"features": {"member_points": "member-service"}}
        assert http.put("/admin/features", json=features, headers=ADMIN).status_code == 200

        def pay(headers: dict[str, str]) -> httpx.Response:
            token = _member_token(http)
            auth = {"Authorization": f"Bearer {token}"}
            product = http.get("/api/products", params={"limit": 1}).json()["data"]["items"][0]
            items = [{"product_id": product["id"], "quantity": 1}]
            order = http.post("/api/orders", json={"items": items}, headers=auth).json()["data"]
            body = {"order_id": order["id"], "method": "points"}
            headers = auth | {"Idempotency-Key": f"pay-{uuid.uuid4()}"} | headers
            return http.post("/api/payments", json=body, headers=headers)

        yield http, pay


def test_a_points_debit_gets_the_requests_remaining_budget_as_its_deadline(slow_member, tmp_path):
    servicer, target = slow_member
    with points_payer(target, tmp_path) as (http, pay):
        started = time.monotonic()
        paid = pay({"X-Shop-Deadline-Ms": "400"})
        answered = time.monotonic() - started
        assert paid.status_code in (503, 504), paid.text
        assert answered < 1.5
        # The call was sent with what the request had left (400 ms less the work before it),
        # not the configured 2 s; and the debit it may have made is given back.
        [deadline] = servicer.spend_deadlines
        assert 0 < deadline <= 0.4
        assert _eventually(lambda: len(servicer.cancelled) == 1)
        debits = http.get("/admin/points-debits", headers=ADMIN).json()["data"]["counts"]
        assert debits.get("pending", 0) == 0


def test_without_a_propagated_deadline_the_call_gets_its_configured_timeout(slow_member, tmp_path):
    servicer, target = slow_member
    servicer.delay = 0.0
    with points_payer(target, tmp_path) as (_, pay):
        paid = pay({})
        assert paid.status_code == 201, paid.text
    [deadline] = servicer.spend_deadlines
    assert 1.5 < deadline <= 2.0  # the configured timeout, below the 5 s server limit


def _member_token(http: httpx.Client) -> str:
    email = f"deadline-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": "password-123", "name": "Deadline"}
    assert http.post("/api/members", json=body).status_code == 201
    login = http.post("/api/members/login", json={"email": email, "password": "password-123"})
    return login.json()["data"]["token"]


def _eventually(check, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
