"""Points once the member service owns them: the monolith's payments hand their points changes
to the member service (an outbox row in the payment's transaction, AdjustPoints after it), and
the monolith's member routes retire feature by feature. Real sockets, HTTP and gRPC."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import grpc
import httpx
import pytest
import sqlalchemy as sa

from infra.settings import Settings
from infra.supervisor import free_port
from monolith import invariants
from monolith.entrypoints.app import create_app as create_monolith
from services.member.client import BlockingMemberClient
from tests.services.member.conftest import ADMIN, PASSWORD, MemberService, auth, eventually
from tests.support.servers import serving


@dataclass
class Pair:
    service: MemberService
    monolith: httpx.Client
    settings: Settings

    def features(self, **values: str) -> httpx.Response:
        body = {"features": values}
        return self.monolith.put("/admin/features", json=body, headers=ADMIN)

    def member(self) -> tuple[int, str]:
        email, member_id = self.service.signup("Lee")
        return member_id, self.service.token(email)

    def pay(self, token: str, sku: str = "TEE-001", method: str = "card") -> dict:
        product = next(
            p
            for p in self.monolith.get("/api/products", params={"limit": 100}).json()["data"][
                "items"
            ]
            if p["sku"] == sku
        )
        items = [{"product_id": product["id"], "quantity": 1}]
        order = self.monolith.post("/api/orders", json={"items": items}, headers=auth(token))
        assert order.status_code == 201, order.text
        body = {"order_id": order.json()["data"]["id"], "method": method}
        headers = auth(token) | {"Idempotency-Key": f"pay-{uuid.uuid4()}"}
        return self.monolith.post("/api/payments", json=body, headers=headers).json()

    def balance(self, member_id: int) -> int:
        with self.service.legacy.connect() as conn:
            return conn.scalar(sa.text(f"SELECT points FROM members WHERE id = {member_id}"))


@contextmanager
def monolith(settings: Settings) -> Iterator[httpx.Client]:
    with ExitStack() as stack:
        url = stack.enter_context(serving(create_monolith(settings)))
        yield stack.enter_context(httpx.Client(base_url=url, timeout=15))


@pytest.fixture
def pair(member_service, settings_for) -> Iterator[Pair]:
    settings = settings_for("shared", monolith_points_relay_interval=0.1)
    with (
        member_service("shared", member_grpc_port=settings.member_grpc_port) as service,
        monolith(settings) as http,
    ):
        yield Pair(service, http, settings)


def test_payments_move_points_through_the_member_service_once_it_owns_them(pair: Pair):
    member_id, token = pair.member()
    earned = pair.pay(token)["data"]["points_earned"]
    assert pair.balance(member_id) == earned  # local: the legacy tables, in the payment

    assert pair.features(member_points="member-service").status_code == 200
    pair.pay(token)
    # Delivered right after the commit: the outbox is empty and the ledger has both lines.
    assert pair.balance(member_id) == 2 * earned
    state = pair.monolith.get("/admin/member-points", headers=ADMIN).json()["data"]
    assert state == {"pending": 0, "parked": []}
    points = pair.service.http.get("/api/members/me/points", headers=auth(token)).json()["data"]
    assert [h["reason"] for h in points["history"]] == ["pay", "pay"]
    with pair.service.legacy.connect() as conn:
        assert invariants.points_match_ledger(conn) == []


def test_a_payment_is_acknowledged_while_the_member_service_is_down_and_its_points_follow(
    member_service, settings_for
):
    settings = settings_for("shared", monolith_points_relay_interval=0.1)
    with monolith(settings) as http:
        with member_service("shared", member_grpc_port=settings.member_grpc_port) as service:
            pair = Pair(service, http, settings)
            member_id, token = pair.member()
            assert pair.features(member_points="member-service").status_code == 200
        # The member service is gone: the payment still commits, its points wait.
        paid = pair.pay(token)
        assert paid["success"], paid
        pending = http.get("/admin/member-points", headers=ADMIN).json()["data"]["pending"]
        assert pending == 1
        with member_service("shared", member_grpc_port=settings.member_grpc_port) as service:
            pair.service = service
            assert eventually(lambda: pair.balance(member_id) == paid["data"]["points_earned"])
            assert http.get("/admin/member-points", headers=ADMIN).json()["data"]["pending"] == 0


def test_paying_with_points_asks_the_member_service_for_the_balance(pair: Pair):
    member_id, token = pair.member()
    assert pair.features(member_points="member-service").status_code == 200
    refused = pair.pay(token, method="points")
    assert refused["error"]["code"] == "INSUFFICIENT_POINTS"
    assert pair.balance(member_id) == 0


def test_adjust_points_is_idempotent_per_payment_and_refuses_bad_changes(pair: Pair):
    member_id, _ = pair.member()
    client = BlockingMemberClient(pair.service.grpc_target, timeout=5)
    try:
        first = client.adjust_points(member_id, 300, "pay", 41)
        again = client.adjust_points(member_id, 300, "pay", 41)
        assert (first.applied, first.balance) == (True, 300)
        assert (again.applied, again.balance) == (False, 300)
        for args, code in (
            ((member_id, -301, "refund", 41), grpc.StatusCode.FAILED_PRECONDITION),
            ((member_id, 5, "gift", 42), grpc.StatusCode.INVALID_ARGUMENT),
            ((member_id, 0, "pay", 43), grpc.StatusCode.INVALID_ARGUMENT),
            ((10**9, 5, "pay", 44), grpc.StatusCode.NOT_FOUND),
        ):
            with pytest.raises(grpc.RpcError) as raised:
                client.adjust_points(*args)
            assert raised.value.code() is code
    finally:
        client.close()
    assert pair.balance(member_id) == 300


def test_the_monolith_member_routes_retire_step_by_step(pair: Pair):
    member_id, token = pair.member()
    body = {"email": f"new-{uuid.uuid4().hex[:6]}@example.com", "password": PASSWORD, "name": "N"}

    assert pair.features(members="read-only").status_code == 200
    moved = pair.monolith.post("/api/members", json=body)
    assert moved.status_code == 410 and moved.json()["error"]["code"] == "FEATURE_MOVED"
    assert moved.json()["error"]["details"][0]["moved_to"] == "member-service"
    me = pair.monolith.get("/api/members/me", headers=auth(token))
    assert me.status_code == 200 and me.json()["data"]["id"] == member_id

    assert pair.features(members="retired").status_code == 200
    gone = pair.monolith.get("/api/members/me", headers=auth(token))
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "FEATURE_MOVED"
    assert pair.pay(token)["success"]  # orders and payments stay in the monolith


def test_feature_switches_survive_a_restart(member_service, settings_for):
    settings = settings_for("shared", member_grpc_port=free_port())
    with monolith(settings) as http:
        assert http.put(
            "/admin/features", json={"features": {"members": "retired"}}, headers=ADMIN
        ).json()["data"]["changed"] == {"members": "retired"}
    with monolith(settings) as http:
        features = http.get("/admin/features", headers=ADMIN).json()["data"]["features"]
        assert features == {"members": "retired", "member_points": "local"}
