"""The parked-events admin API over real HTTP (uvicorn on a socket), on each real database:
the admin token, envelopes, and a replay that applies an event once through the inbox."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from libs.events.admin import parked_events_router
from libs.events.consumer import ConsumerRunner
from libs.events.envelope import Event
from libs.response import is_valid_envelope
from libs.service import ServiceOptions, create_service_app
from tests.support.servers import serving

TOKEN = "admin-secret"
GROUP = "read-model"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


class Api:
    def __init__(self, client: httpx.Client, db, registry: CollectorRegistry) -> None:
        self.client, self.db, self.registry = client, db, registry
        self.refuse = False  # the handler's bug, until an operator fixes it

    def handle(self, conn: sa.Connection, event: Event) -> None:
        if self.refuse:
            raise ValueError("still broken")
        self.db.apply(conn, event)

    def park(self, value: bytes, offset: int, group: str = GROUP) -> int:
        with self.db.engine.begin() as conn:
            self.db.inbox.park(conn, group, "shop.members", 0, offset, b"m-1", value, "r")
            return self.db.inbox.parked_events(conn)[-1].id

    def replay(self, parked_id: int, headers: dict | None = None) -> httpx.Response:
        return self.client.post(
            f"/admin/events/parked/{parked_id}/replay",
            headers=ADMIN if headers is None else headers,
        )


@pytest.fixture
def api(inbox_db) -> Iterator[Api]:
    registry = CollectorRegistry()
    holder: list[Api] = []
    runner = ConsumerRunner(
        "127.0.0.1:1",  # never started: a replay needs the database only
        GROUP,
        ["shop.members"],
        inbox_db.engine,
        inbox_db.inbox,
        lambda conn, event: holder[0].handle(conn, event),
        registry=registry,
    )
    app = create_service_app(ServiceOptions("consumer-under-test"))
    app.state.admin_token = TOKEN
    app.include_router(parked_events_router([runner]))
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        holder.append(Api(client, inbox_db, registry))
        yield holder[0]


def test_the_parked_list_needs_the_admin_token(api):
    missing = api.client.get("/admin/events/parked")
    wrong = api.client.get("/admin/events/parked", headers={"Authorization": "Bearer nope"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "UNAUTHENTICATED")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "FORBIDDEN")
    assert is_valid_envelope(missing.json()) and is_valid_envelope(wrong.json())
    assert api.replay(1, headers={}).status_code == 401


def test_parked_events_are_listed_in_an_envelope_with_their_bytes(api):
    api.park(b"\xff not json", offset=3)
    api.park(b"{}", offset=4, group="another-process-group")

    response = api.client.get("/admin/events/parked", headers=ADMIN)

    body = response.json()
    assert response.status_code == 200 and is_valid_envelope(body)
    assert response.headers["X-Served-By"] == "consumer-under-test"
    [parked] = body["data"]["parked"]  # only this process's groups
    assert parked["group"] == GROUP and parked["offset"] == 3
    assert parked["value"] == "\\xff not json" and parked["key"] == "m-1"
    assert parked["replayed_at"] is None


def test_a_replay_applies_the_event_once_and_a_second_replay_is_refused(api):
    event = Event("MemberJoined", "member", "m-1", 1, {})
    parked_id = api.park(event.to_bytes(), offset=0)

    first = api.replay(parked_id)
    again = api.replay(parked_id)

    assert first.status_code == 200 and first.json()["data"]["outcome"] == "processed"
    assert (again.status_code, again.json()["error"]["code"]) == (409, "ALREADY_REPLAYED")
    assert [row.event_id for row in api.db.applied_rows()] == [event.id]
    listed = api.client.get("/admin/events/parked?replayed=true", headers=ADMIN).json()
    assert [p["id"] for p in listed["data"]["parked"]] == [parked_id]
    labels = {"group": GROUP, "outcome": "processed"}
    assert api.registry.get_sample_value("shop_consumer_events_total", labels) == 1


def test_a_replay_of_an_event_applied_meanwhile_is_a_duplicate(api):
    event = Event("MemberJoined", "member", "m-1", 1, {})
    with api.db.engine.begin() as conn:  # republished and applied after it was parked
        api.db.inbox.record(conn, GROUP, event.id, "shop.members", 0, 9)
    parked_id = api.park(event.to_bytes(), offset=0)

    response = api.replay(parked_id)

    assert response.json()["data"]["outcome"] == "duplicate"
    assert api.db.applied_rows() == []


def test_a_replay_that_still_fails_changes_nothing(api):
    malformed = api.park(b"not an envelope", offset=0)
    refused = api.park(Event("MemberJoined", "member", "m-1", 1, {}).to_bytes(), offset=1)
    api.refuse = True

    responses = [api.replay(malformed), api.replay(refused)]

    assert [r.status_code for r in responses] == [422, 422]
    assert {r.json()["error"]["code"] for r in responses} == {"REPLAY_FAILED"}
    assert "still broken" in responses[1].json()["error"]["details"][0]
    waiting = api.client.get("/admin/events/parked?replayed=false", headers=ADMIN).json()
    assert len(waiting["data"]["parked"]) == 2  # still parked, to replay once fixed
    api.refuse = False
    assert api.replay(refused).status_code == 200


def test_an_unknown_id_answers_a_404_envelope(api):
    foreign = api.park(b"{}", offset=0, group="another-process-group")
    for parked_id in (424242, foreign):
        response = api.replay(parked_id)
        body = response.json()
        assert response.status_code == 404 and is_valid_envelope(body)
        assert body["error"]["code"] == "PARKED_EVENT_NOT_FOUND"
    assert api.client.get("/admin/events/parked?limit=0", headers=ADMIN).status_code == 422
