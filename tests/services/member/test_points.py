"""Points owned by the member service: a debit is its decision (SpendPoints, atomic and
idempotent on the caller's key, given back with CancelSpend when the payment fails), credits
follow from the payment events (tests/services/member/test_payment_events.py), and the
monolith's member routes retire feature by feature. Real sockets, HTTP and gRPC, on SQLite and
PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import grpc
import httpx
import pytest
import sqlalchemy as sa

from infra.supervisor import free_port
from libs.errors import Unavailable
from libs.events.envelope import Event, parse
from monolith import invariants
from monolith.entrypoints.app import create_app as create_monolith
from monolith.service_layer import events
from services.member.client import BlockingMemberClient
from services.member.service_layer import points as member_points
from tests.services.member.conftest import (
    ADMIN,
    PASSWORD,
    Environment,
    MemberService,
    auth,
    staged_features,
)
from tests.support.servers import serving

# Dual writes on PostgreSQL commit in two phases (tests/conftest.py: two_phase).
pytestmark = pytest.mark.usefixtures("two_phase")

TEE = "TEE-001"  # 29,000 won: the talk's reproduction spends exactly one tee's worth


@dataclass
class Pair:
    service: MemberService
    monolith: httpx.Client
    app: object
    settings: Environment

    def features(self, **values: str) -> httpx.Response:
        body = {"features": values}
        return self.monolith.put("/admin/features", json=body, headers=ADMIN)

    def staged(self, mode: str) -> httpx.Response:
        """The service's data mode moved forward as the stage engine moves it: the monolith's
        member features for that mode first, then the data mode."""
        assert self.features(**dict(staged_features(mode))).status_code == 200
        return self.service.switch(mode)

    def member(self) -> tuple[int, str]:
        email, member_id = self.service.signup("Lee")
        return member_id, self.service.token(email)

    def product(self, sku: str = TEE) -> dict:
        items = self.monolith.get("/api/products", params={"limit": 100}).json()["data"]["items"]
        return next(p for p in items if p["sku"] == sku)

    def order(self, token: str, sku: str = TEE, client: httpx.Client | None = None) -> dict:
        items = [{"product_id": self.product(sku)["id"], "quantity": 1}]
        placed = (client or self.monolith).post(
            "/api/orders", json={"items": items}, headers=auth(token)
        )
        assert placed.status_code == 201, placed.text
        return placed.json()["data"]

    def pay(
        self,
        token: str,
        order_id: int,
        method: str = "card",
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        body = {"order_id": order_id, "method": method}
        headers = auth(token) | {"Idempotency-Key": f"pay-{uuid.uuid4()}"}
        return (client or self.monolith).post("/api/payments", json=body, headers=headers)

    def refund(self, token: str, payment_id: int) -> httpx.Response:
        return self.monolith.post(f"/api/payments/{payment_id}/refund", headers=auth(token))

    def credit(self, member_id: int, amount: int) -> None:
        """Gives the member points the way a card payment's event does."""
        payment_id = 10**9 + uuid.uuid4().int % 10**8
        body = {"member_id": member_id, "payment_id": payment_id, "points_earned": amount}
        event = Event("PaymentCompleted", "payment", str(payment_id), 1, body)
        assert member_points.apply_payment_event(event, self.service.data)

    def owners(self) -> list[sa.Engine]:
        """The DBs that hold members in the service's data mode."""
        mode = self.service.data.mode.value
        return {
            "shared": [self.service.legacy],
            "dual": [self.service.legacy, self.service.new],
            "single": [self.service.new],
        }[mode]

    def balance(self, member_id: int) -> int:
        """The balance every owning DB agrees on. On PostgreSQL a dual write commits its two
        prepared halves one after the other, so a reader between the two commits (the
        consumer applying an event while the test polls) sees them apart for a moment: only
        a disagreement that lasts is one."""
        deadline = time.monotonic() + 2.0
        while True:
            balances = set()
            for engine in self.owners():
                with engine.connect() as conn:
                    query = sa.text("SELECT points FROM members WHERE id = :id")
                    balances.add(conn.scalar(query, {"id": member_id}))
            if len(balances) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert len(balances) == 1, f"the owning DBs disagree: {balances}"
        return balances.pop()

    def ledger(self, member_id: int) -> list[tuple[str, int]]:
        with self.owners()[-1].connect() as conn:
            query = sa.text(
                "SELECT reason, delta FROM point_ledger WHERE member_id = :id ORDER BY id"
            )
            return [tuple(row) for row in conn.execute(query, {"id": member_id})]

    def debits(self) -> dict[str, int]:
        state = self.monolith.get("/admin/points-debits", headers=ADMIN).json()["data"]
        return state["counts"]

    def ledgers_match_balances(self) -> None:
        for engine in self.owners():
            with engine.connect() as conn:
                assert invariants.points_match_ledger(conn) == []


@contextmanager
def monolith(settings: Environment) -> Iterator[tuple[httpx.Client, object]]:
    app = create_monolith(settings)
    with ExitStack() as stack:
        url = stack.enter_context(serving(app))
        yield stack.enter_context(httpx.Client(base_url=url, timeout=15)), app


@contextmanager
def pair_in(member_service, settings_for, mode: str, points: str, **overrides) -> Iterator[Pair]:
    """The member service in `mode` and the monolith with `member_points` = `points`, as the
    stage walk has them: stages 0-2 local + shared, 3 member-service + dual, 4 + single."""
    # A topic of its own: the brokers live for the whole session, and another test's late
    # events must not reach this test's members (fresh DBs hand out the same ids).
    overrides.setdefault("kafka_topic_prefix", f"test-{uuid.uuid4().hex[:8]}.")
    settings = settings_for("shared", **overrides)
    with (
        member_service("shared", grpc_port=settings.grpc_port, **overrides) as svc,
        monolith(settings) as (http, app),
    ):
        pair = Pair(svc, http, app, settings)
        if points != "local":
            assert pair.features(member_points=points).status_code == 200
        for step in {"shared": [], "dual": ["dual"], "single": ["dual", "single"]}[mode]:
            assert pair.staged(step).status_code == 200, step
        yield pair


@pytest.fixture
def pair(member_service, settings_for) -> Iterator[Pair]:
    with pair_in(member_service, settings_for, "shared", "member-service") as pair:
        yield pair


STAGES = [
    pytest.param("shared", "local", id="stages-0-2"),
    pytest.param("shared", "member-service", id="member-service-on-the-shared-db"),
    pytest.param("dual", "member-service", id="stage-3"),
    pytest.param("single", "member-service", id="stage-4"),
]


@pytest.mark.parametrize(("mode", "points"), STAGES)
def test_concurrent_points_payments_never_spend_more_than_the_balance(
    member_service, settings_for, mode: str, points: str
):
    """The talk's failure, reproduced before this design: a balance of 29,000 and six
    concurrent 29,000-point payments; three were captured and the balance went to 0. Now the
    owner checks and debits in one transaction: exactly one is captured, the others are
    refused, and the one debit is on the ledger once."""
    with pair_in(member_service, settings_for, mode, points) as pair:
        member_id, token = pair.member()
        price = pair.product()["price"]
        pair.credit(member_id, price)
        orders = [pair.order(token) for _ in range(6)]

        def pay(order: dict) -> httpx.Response:
            with httpx.Client(base_url=str(pair.monolith.base_url), timeout=15) as client:
                return pair.pay(token, order["id"], "points", client)

        with ThreadPoolExecutor(len(orders)) as pool:
            replies = list(pool.map(pay, orders))

        statuses = sorted(r.status_code for r in replies)
        assert statuses == [201, 409, 409, 409, 409, 409], [r.text for r in replies]
        refused = {r.json()["error"]["code"] for r in replies if r.status_code == 409}
        assert refused == {"INSUFFICIENT_POINTS"}
        assert pair.balance(member_id) == 0
        assert pair.ledger(member_id) == [("earn", price), ("spend", -price)]
        pair.ledgers_match_balances()
        if points == "member-service":
            assert pair.debits() == {"used": 1, "refused": 5}


def test_spend_and_cancel_are_atomic_and_idempotent_per_key(pair: Pair):
    member_id, _ = pair.member()
    pair.credit(member_id, 500)
    client = BlockingMemberClient(pair.service.grpc_target, timeout=5)
    key, late = f"test-{uuid.uuid4()}", f"test-{uuid.uuid4()}"
    try:
        first = client.spend_points(member_id, 300, key)
        again = client.spend_points(member_id, 300, key)
        assert (first.applied, first.spent, first.balance) == (True, 300, 200)
        assert (again.applied, again.spent, again.balance) == (False, 300, 200)
        cancelled = client.cancel_spend(member_id, key)
        cancelled_again = client.cancel_spend(member_id, key)
        assert (cancelled.applied, cancelled.restored, cancelled.balance) == (True, 300, 500)
        assert (cancelled_again.applied, cancelled_again.balance) == (False, 500)
        # A cancel that overtook its spend (the spend's call timed out on the way) leaves a
        # tombstone: the spend, arriving late, refuses instead of taking the points for good.
        assert client.cancel_spend(member_id, late).restored == 0
        with pytest.raises(grpc.RpcError) as raised:
            client.spend_points(member_id, 100, late)
        assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert raised.value.details().startswith("SPEND_CANCELLED")
        for args, code in (
            ((member_id, 501, f"test-{uuid.uuid4()}"), grpc.StatusCode.FAILED_PRECONDITION),
            ((member_id, 0, f"test-{uuid.uuid4()}"), grpc.StatusCode.INVALID_ARGUMENT),
            ((member_id, 5, "short"), grpc.StatusCode.INVALID_ARGUMENT),
            ((member_id, 5, f"test-{uuid.uuid4()}", "gift"), grpc.StatusCode.INVALID_ARGUMENT),
            ((member_id, 5, f"test-{uuid.uuid4()}", "take-back"), grpc.StatusCode.INVALID_ARGUMENT),
            ((10**9, 5, f"test-{uuid.uuid4()}"), grpc.StatusCode.NOT_FOUND),
        ):
            with pytest.raises(grpc.RpcError) as raised:
                client.spend_points(*args)
            assert raised.value.code() is code, args
    finally:
        client.close()
    assert pair.balance(member_id) == 500
    assert pair.ledger(member_id) == [
        ("earn", 500),
        ("spend", -300),
        ("cancel", 300),
        ("cancel", 0),
    ]
    pair.ledgers_match_balances()


def test_a_payment_that_fails_after_its_debit_gives_the_points_back(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
):
    member_id, token = pair.member()
    price = pair.product()["price"]
    pair.credit(member_id, price)
    order = pair.order(token)

    def broken(*_args, **_kwargs):
        raise RuntimeError("the payment's transaction fails after the debit")

    monkeypatch.setattr(events, "payment_completed", broken)
    failed = pair.pay(token, order["id"], "points")
    assert failed.status_code == 500
    assert pair.balance(member_id) == price
    assert pair.ledger(member_id) == [("earn", price), ("spend", -price), ("cancel", price)]
    assert pair.debits() == {"cancelled": 1}

    monkeypatch.undo()
    paid = pair.pay(token, order["id"], "points")
    assert paid.status_code == 201, paid.text
    assert pair.balance(member_id) == 0
    pair.ledgers_match_balances()


def test_a_debit_a_dead_request_left_pending_is_given_back_and_cannot_be_used_after(pair: Pair):
    """A request that died between the member service's answer and its own commit leaves a
    pending debit; the recovery gives it back once it is older than any request can live,
    and a payment that still tried to use it then is refused rather than paid for free."""
    member_id, token = pair.member()
    pair.credit(member_id, 1000)
    points = pair.app.state.member_service_points
    order = pair.order(token)
    with points.engine.begin() as conn:
        debit = points.intend(conn, member_id, 400, "spend", order["id"])
    points.debit(debit)
    assert pair.balance(member_id) == 600

    assert points.recover(stale_after=3600) == 0  # too young: a request may still use it
    given = pair.monolith.post("/admin/points-debits/recover", headers=ADMIN).json()["data"]
    assert given["given_back"] == 0 and given["counts"] == {"pending": 1}
    assert points.recover(stale_after=0) == 1
    assert pair.balance(member_id) == 1000
    assert pair.debits() == {"cancelled": 1}

    with points.engine.begin() as conn, pytest.raises(Unavailable) as refused:
        points.settle(conn, member_id, 1, {}, debit)
    assert refused.value.code == "POINTS_DEBIT_EXPIRED"
    pair.ledgers_match_balances()


def test_a_refund_before_the_earn_event_takes_back_what_the_event_would_give(pair: Pair):
    """The card payment's earn travels as an event; this member service has no broker, so
    the refund's take-back arrives first. It applies the earn itself and reverses it; the
    event, when it comes, finds its line and changes nothing."""
    member_id, token = pair.member()
    order = pair.order(token)
    payment = pair.pay(token, order["id"]).json()["data"]
    earned = payment["points_earned"]
    assert earned > 0 and pair.balance(member_id) == 0  # not earned yet: the event waits

    refunded = pair.refund(token, payment["id"])
    assert refunded.status_code == 200, refunded.text
    assert pair.ledger(member_id) == [("earn", earned), ("take-back", -earned)]
    with pair.app.state.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT type, payload FROM event_outbox ORDER BY position"))
        published = {kind: payload for kind, payload in rows}
    late = parse(published["PaymentCompleted"])
    assert member_points.apply_payment_event(late, pair.service.data) is False
    assert pair.balance(member_id) == 0
    pair.ledgers_match_balances()


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
    assert pair.pay(token, pair.order(token)["id"]).status_code == 201  # orders stay behind


def test_feature_switches_survive_a_restart(member_service, settings_for):
    settings = settings_for("shared", grpc_port=free_port())
    with monolith(settings) as (http, _):
        assert http.put(
            "/admin/features", json={"features": {"members": "retired"}}, headers=ADMIN
        ).json()["data"]["changed"] == {"members": "retired"}
    with monolith(settings) as (http, _):
        features = http.get("/admin/features", headers=ADMIN).json()["data"]["features"]
        assert features.items() >= {"members": "retired", "member_points": "local"}.items()
