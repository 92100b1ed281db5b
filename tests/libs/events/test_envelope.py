"""The envelope round-trips, and anything that is not exactly an envelope is refused with a
reason a parked-events list can show."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from libs.events.envelope import Event, MalformedEvent, parse


def an_event(**fields) -> Event:
    return Event(
        **{
            "type": "PaymentCompleted",
            "aggregate_type": "payment",
            "aggregate_id": "pay-7",
            "sequence": 3,
            "data": {"amount": 12_000, "member_id": 42},
            **fields,
        }
    )


def as_json(**changes) -> bytes:
    return json.dumps({**an_event().to_json(), **changes}).encode()


def test_an_event_survives_the_trip_through_kafka_bytes():
    event = an_event(occurred_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    assert parse(event.to_bytes()) == event
    assert event.key == b"pay-7"


def test_each_event_gets_its_own_id_and_a_time_zone_aware_time():
    first, second = an_event(), an_event()
    assert first.id != second.id
    assert first.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "no value"),
        (b"\xff\xfe", "not JSON"),
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"{}", "missing fields"),
        (as_json(extra=1), "unknown fields: extra"),
        (as_json(id="42"), "id is not a UUID"),
        (as_json(type="payment_completed"), "PascalCase"),
        (as_json(aggregate_id=""), "aggregate_id"),
        (as_json(sequence=0), "sequence"),
        (as_json(sequence=True), "sequence"),
        (as_json(sequence="3"), "sequence"),
        (as_json(schema_version=0), "schema_version"),
        (as_json(data=[1]), "data must be a JSON object"),
        (as_json(occurred_at="yesterday"), "not ISO 8601"),
        (as_json(occurred_at="2026-12-01T09:30:00"), "time zone"),
        (as_json(occurred_at=1764581400), "ISO 8601 string"),
    ],
)
def test_anything_but_an_envelope_is_refused_with_its_reason(raw, reason):
    with pytest.raises(MalformedEvent, match=reason):
        parse(raw)


def test_an_event_cannot_even_be_built_malformed():
    with pytest.raises(MalformedEvent, match="sequence"):
        an_event(sequence=-1)
