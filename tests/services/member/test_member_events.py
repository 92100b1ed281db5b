"""Every change of a member is an event on `shop.members`, keyed by the member's id, whose
sequence is the row's version: signup (MemberRegistered, 1), a profile change
(MemberProfileChanged), every move of the balance (MemberPointsChanged, with its delta and
reason). Each carries the member's whole state after the change, is written in the change's
own transaction to the outbox of the DB of record (the legacy DB's while the member service
shares it, the member DB's from dual write on), whichever side makes the change, and a refused
change writes none. In every stage's mode, on SQLite and PostgreSQL; the last test publishes
them through the real brokers."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer

from libs.auth import TokenIssuer
from libs.errors import NotFound
from libs.events.envelope import Event, parse
from monolith import invariants
from services.member import events as member_events
from services.member.adapters.tables import event_outbox
from services.member.client import BlockingMemberClient
from services.member.service_layer import commands
from services.member.service_layer import members as handlers
from tests.services.member.conftest import PASSWORD, auth, eventually
from tests.services.member.test_points import STAGES, Pair, pair_in
from tests.support.kafka_clients import CLIENT_TIMINGS, consume

# Dual writes on PostgreSQL commit in two phases (tests/conftest.py: two_phase).
pytestmark = pytest.mark.usefixtures("two_phase")

STATE = ("email", "name", "phone", "points")


def outbox_events(engine: sa.Engine, member_id: int) -> list[Event]:
    """The member's events in one DB's outbox, by sequence; each row's columns agree with
    its envelope."""
    t = event_outbox
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.topic, t.c.sequence, t.c.type, t.c.payload)
            .where(t.c.aggregate_type == "member", t.c.aggregate_id == str(member_id))
            .order_by(t.c.sequence)
        ).all()
    events = [parse(row.payload) for row in rows]
    assert [(r.topic, r.sequence, r.type) for r in rows] == [
        (member_events.TOPIC, e.sequence, e.type) for e in events
    ]
    return events


def version(engine: sa.Engine, member_id: int) -> int | None:
    with engine.connect() as conn:
        query = sa.text("SELECT version FROM members WHERE id = :id")
        return conn.scalar(query, {"id": member_id})


def of_record(pair: Pair) -> tuple[sa.Engine, sa.Engine]:
    """(the DB whose outbox the member events go to, the other one) in the service's mode."""
    service = pair.service
    shared = service.data.mode.value == "shared"
    return (service.legacy, service.new) if shared else (service.new, service.legacy)


def me(pair: Pair, token: str) -> dict[str, Any]:
    """The member as GET /api/members/me answers it, in an event's terms."""
    answer = pair.service.http.get("/api/members/me", headers=auth(token))
    assert answer.status_code == 200, answer.text
    body = answer.json()["data"]
    return {"member_id": body["id"]} | {name: body[name] for name in STATE}


def sign_up(http, email: str) -> int:
    created = http.post("/api/members", json={"email": email, "password": PASSWORD, "name": "Kim"})
    assert created.status_code == 201, created.text
    return created.json()["data"]["id"]


@pytest.mark.parametrize(("mode", "points"), STAGES)
def test_every_change_of_a_member_is_announced_once_in_order_with_its_whole_state(
    member_service, settings_for, mode: str, points: str
):
    with pair_in(member_service, settings_for, mode, points) as pair:
        # While both share the legacy DB both sides change members, one row and one sequence
        # between them; from dual write on only the member service does.
        shared = mode == "shared"
        first, second = (pair.monolith, pair.service.http) if shared else (pair.service.http,) * 2
        email = f"kim-{uuid.uuid4().hex[:8]}@example.com"
        member_id = sign_up(first, email)
        token = pair.service.token(email)
        states = [me(pair, token)]
        expected: list[tuple[str, tuple[int, str] | None]] = [("MemberRegistered", None)]

        body = {"name": "Kim Minji", "phone": "010-1234-5678"}
        changed = second.patch("/api/members/me", json=body, headers=auth(token))
        assert changed.status_code == 200, changed.text
        states.append(me(pair, token))
        expected.append(("MemberProfileChanged", None))

        price = pair.product()["price"]
        pair.credit(member_id, price)  # as the member service applies a card payment's event
        states.append(me(pair, token))
        expected.append(("MemberPointsChanged", (price, "earn")))

        # Spent by the monolith itself (local points) or by the member service it calls.
        spent = pair.pay(token, pair.order(token)["id"], "points")
        assert spent.status_code == 201, spent.text
        states.append(me(pair, token))
        expected.append(("MemberPointsChanged", (-price, "spend")))

        if points == "local":  # the monolith earns a card payment's points in its transaction
            card = pair.pay(token, pair.order(token)["id"])
            assert card.status_code == 201, card.text
            states.append(me(pair, token))
            expected.append(("MemberPointsChanged", (card.json()["data"]["points_earned"], "earn")))

        record, other = of_record(pair)
        events = outbox_events(record, member_id)
        assert [(e.type, e.sequence) for e in events] == [
            (kind, n) for n, (kind, _) in enumerate(expected, start=1)
        ]
        for n, (event, state, (_, moved)) in enumerate(zip(events, states, expected, strict=True)):
            data = dict(event.data)
            delta, reason = data.pop("delta", None), data.pop("reason", None)
            assert (delta, reason) == (moved or (None, None)), event
            assert data == state | {"version": n + 1}, event
            assert (event.aggregate_type, event.aggregate_id) == ("member", str(member_id))
        assert states[-1]["points"] == sum(m[0] for _, m in expected if m)
        assert outbox_events(other, member_id) == []
        assert version(record, member_id) == len(events)
        if mode == "dual":  # one statement, `version + 1`, in each DB: both rows move the same
            assert version(other, member_id) == len(events)
        if shared:  # the batch sync carries the version to the member DB like any column
            assert eventually(lambda: version(other, member_id) == len(events))
        with record.connect() as conn:
            assert invariants.member_events_match_versions(conn) == []

        _refuse_every_kind_of_change(pair, member_id, email, token, first)
        assert [e.id for e in outbox_events(record, member_id)] == [e.id for e in events]
        assert outbox_events(other, member_id) == []
        assert version(record, member_id) == len(events)
        assert me(pair, token) == states[-1]


def _refuse_every_kind_of_change(pair: Pair, member_id: int, email: str, token: str, first):
    """Taken email, bad input, unknown member, insufficient points, bad keys: each refused."""
    for http in {pair.service.http, first}:
        again = http.post("/api/members", json={"email": email, "password": PASSWORD, "name": "K"})
        assert (again.status_code, again.json()["error"]["code"]) == (409, "EMAIL_TAKEN")
        for bad in ({"phone": "call me"}, {"name": ""}, {}):
            refused = http.patch("/api/members/me", json=bad, headers=auth(token))
            assert refused.status_code == 422, refused.text
    tokens = TokenIssuer(pair.settings.jwt_secret, pair.settings.token_ttl_seconds)
    stranger = auth(tokens.issue(10**9))  # a valid token, no such member
    unknown = pair.service.http.patch("/api/members/me", json={"name": "X"}, headers=stranger)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "MEMBER_NOT_FOUND")
    with pytest.raises(NotFound):
        handlers.update_profile(commands.UpdateProfile(10**9, "X"), pair.service.data)

    too_dear = pair.pay(token, pair.order(token, "COT-001")["id"], "points")
    assert (too_dear.status_code, too_dear.json()["error"]["code"]) == (409, "INSUFFICIENT_POINTS")
    client = BlockingMemberClient(pair.service.grpc_target, timeout=5)
    try:
        for args, code in (
            ((member_id, 10**9, f"test-{uuid.uuid4()}"), grpc.StatusCode.FAILED_PRECONDITION),
            ((member_id, 5, "short"), grpc.StatusCode.INVALID_ARGUMENT),
            ((member_id, -5, f"test-{uuid.uuid4()}"), grpc.StatusCode.INVALID_ARGUMENT),
            ((10**9, 5, f"test-{uuid.uuid4()}"), grpc.StatusCode.NOT_FOUND),
        ):
            with pytest.raises(grpc.RpcError) as raised:
                client.spend_points(*args)
            assert raised.value.code() is code, args
        # A cancel that overtakes its spend moves no balance: a tombstone, no event.
        assert client.cancel_spend(member_id, f"test-{uuid.uuid4()}").restored == 0
    finally:
        client.close()


def test_a_members_history_runs_on_across_every_switch_of_the_data_mode(
    member_service, settings_for
):
    """Events 1..N whatever mode wrote each: the legacy DB's outbox holds what was announced
    while the service shared it, the member DB's the rest; the sync carries the version to the
    member DB before dual write moves both rows, and single write's step back to dual carries
    it to the legacy DB."""
    with pair_in(member_service, settings_for, "shared", "member-service") as pair:
        service = pair.service
        email, member_id = service.signup("Lee")
        token = service.token(email)
        assert eventually(lambda: version(service.new, member_id) == 1)  # the batch sync

        def change(name: str) -> None:
            answer = service.http.patch("/api/members/me", json={"name": name}, headers=auth(token))
            assert answer.status_code == 200, answer.text

        assert pair.staged("dual").status_code == 200
        change("Lee Dual")
        pair.credit(member_id, 700)
        assert version(service.legacy, member_id) == version(service.new, member_id) == 3
        assert pair.staged("single").status_code == 200
        change("Lee Single")
        assert (version(service.legacy, member_id), version(service.new, member_id)) == (3, 4)
        assert service.switch("dual").status_code == 200  # back: the legacy rows catch up
        change("Lee Back")
        assert version(service.legacy, member_id) == version(service.new, member_id) == 5

        legacy, new = (
            outbox_events(service.legacy, member_id),
            outbox_events(service.new, member_id),
        )
        assert [(e.type, e.sequence) for e in legacy] == [("MemberRegistered", 1)]
        assert [(e.type, e.sequence) for e in new] == [
            ("MemberProfileChanged", 2),
            ("MemberPointsChanged", 3),
            ("MemberProfileChanged", 4),
            ("MemberProfileChanged", 5),
        ]
        assert [e.data["name"] for e in legacy + new] == [
            "Lee", "Lee Dual", "Lee Dual", "Lee Single", "Lee Back",
        ]  # fmt: skip
        assert (new[1].data["delta"], new[1].data["points"]) == (700, 700)  # after the earn
        assert me(pair, token) | {"version": 5} == {
            k: new[-1].data[k] for k in ("member_id", *STATE, "version")
        }


def test_the_invariant_names_a_member_whose_change_went_unannounced(member_service, settings_for):
    with pair_in(member_service, settings_for, "shared", "local") as pair:
        email, member_id = pair.service.signup("Park")
    with pair.service.legacy.begin() as conn:  # a change that bypassed the service layer
        conn.execute(
            sa.text("UPDATE members SET name = 'Drift', version = version + 1 WHERE id = :id"),
            {"id": member_id},
        )
        assert invariants.member_events_match_versions(conn) == [
            f"member {member_id} is at version 2: announced sequences [1]"
        ]
        conn.execute(sa.text("UPDATE members SET version = 1 WHERE id = :id"), {"id": member_id})
        now = {"member_id": member_id, "email": email, "name": "Drift", "phone": None}
        last = now | {"name": "Park"}
        assert invariants.member_events_match_versions(conn) == [
            f"member {member_id} is {now | {'points': 0, 'version': 1}}: its last event says "
            f"{last | {'points': 0, 'version': 1}}"
        ]


def test_the_relays_publish_a_members_events_under_its_key(member_service, settings_for, bootstrap):
    """Through a real broker (the dev broker and Apache Kafka): the monolith's relay publishes
    what the service announced while it shared the legacy DB, the service's own relay what it
    announced from dual write on; one key, so one partition."""
    with pair_in(
        member_service, settings_for, "shared", "member-service", kafka_bootstrap=bootstrap
    ) as pair:
        service = pair.service
        email, member_id = service.signup("Choi")
        token = service.token(email)
        assert pair.staged("dual").status_code == 200
        patched = service.http.patch("/api/members/me", json={"name": "C"}, headers=auth(token))
        assert patched.status_code == 200, patched.text
        pair.credit(member_id, 300)
        for engine in (service.legacy, service.new):
            assert eventually(lambda engine=engine: _all_published(engine), timeout=30)
        topic = pair.settings.kafka_topic_prefix + member_events.TOPIC
    received = asyncio.run(_read(bootstrap, topic, 3))
    events = {parse(m.value).sequence: parse(m.value) for m in received}
    assert [(n, events[n].type) for n in sorted(events)] == [
        (1, "MemberRegistered"),
        (2, "MemberProfileChanged"),
        (3, "MemberPointsChanged"),
    ]
    assert {m.key for m in received} == {str(member_id).encode()}
    assert len({m.partition for m in received}) == 1
    assert events[3].data["points"] == 300 and events[3].data["name"] == "C"


def _all_published(engine: sa.Engine) -> bool:
    waiting = sa.select(sa.func.count()).where(event_outbox.c.published_at.is_(None))
    with engine.connect() as conn:
        return not conn.scalar(waiting.select_from(event_outbox))


async def _read(bootstrap: str, topic: str, count: int) -> list:
    """The first `count` distinct events of the topic (at least once: a retried relay batch
    may send one twice)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"member-events-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        **CLIENT_TIMINGS,
    )
    await consumer.start()
    received, seen = [], set[str]()
    deadline = time.monotonic() + 30
    try:
        while len(seen) < count and time.monotonic() < deadline:
            for message in await consume(consumer, 1, within=30):
                if parse(message.value).id not in seen:
                    seen.add(parse(message.value).id)
                    received.append(message)
    finally:
        await consumer.stop()
    return received
