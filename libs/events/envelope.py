"""The one event envelope (docs/contracts.md, events): what happened, to which aggregate,
at which per-aggregate sequence, in which schema version. Parsing is strict: anything that is
not exactly an envelope raises MalformedEvent with the reason, so a consumer can park it
instead of crashing or guessing."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Past tense, as the brief says: PaymentCompleted, OrderPaid, PointsEarned.
_TYPE = re.compile(r"^[A-Z][A-Za-z0-9]{2,99}$")
_FIELDS = {
    "id", "type", "aggregate_type", "aggregate_id", "sequence", "occurred_at",
    "schema_version", "data",
}  # fmt: skip


class MalformedEvent(ValueError):
    """The bytes are not an event envelope; the message says what is wrong."""


@dataclass(frozen=True)
class Event:
    type: str
    aggregate_type: str
    aggregate_id: str
    sequence: int
    data: dict[str, Any]
    schema_version: int = 1
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            raise MalformedEvent(problem)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "sequence": self.sequence,
            "occurred_at": self.occurred_at.isoformat(),
            "schema_version": self.schema_version,
            "data": self.data,
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True).encode()

    def count(self, name: str, *, minimum: int = 1) -> int:
        """`data[name]` as an integer of at least `minimum`; MalformedEvent (a ValueError, so
        a consumer parks the event) naming the field otherwise."""
        value = self.data.get(name)
        if not _count(value, minimum):
            raise MalformedEvent(f"data.{name} must be an integer >= {minimum}, not {value!r}")
        return value  # type: ignore[return-value]  # _count checked it is an int

    @property
    def key(self) -> bytes:
        """The Kafka key: the aggregate id, so one aggregate's events share a partition and
        keep their order."""
        return self.aggregate_id.encode()


def parse(raw: bytes | None) -> Event:
    """An Event from Kafka bytes, or MalformedEvent naming the first problem found."""
    if raw is None:
        raise MalformedEvent("the message has no value")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedEvent("the envelope is not a JSON object")
    missing, unknown = _FIELDS - body.keys(), body.keys() - _FIELDS
    if missing:
        raise MalformedEvent(f"missing fields: {', '.join(sorted(missing))}")
    if unknown:
        raise MalformedEvent(f"unknown fields: {', '.join(sorted(unknown))}")
    occurred_at = body["occurred_at"]
    if not isinstance(occurred_at, str):
        raise MalformedEvent("occurred_at must be an ISO 8601 string")
    try:
        when = datetime.fromisoformat(occurred_at)
    except ValueError:
        raise MalformedEvent(f"occurred_at is not ISO 8601: {occurred_at!r}") from None
    if when.tzinfo is None:
        raise MalformedEvent("occurred_at must carry a time zone")
    return Event(**{**body, "occurred_at": when})


def _problem(event: Event) -> str | None:
    try:
        uuid.UUID(str(event.id))
    except ValueError:
        return f"id is not a UUID: {event.id!r}"
    checks = [
        (isinstance(event.type, str) and _TYPE.match(event.type), "type must be a PascalCase name"),
        (_text(event.aggregate_type), "aggregate_type must be a non-empty string"),
        (_text(event.aggregate_id), "aggregate_id must be a non-empty string"),
        (_count(event.sequence, 1), "sequence must be an integer >= 1"),
        (_count(event.schema_version, 1), "schema_version must be an integer >= 1"),
        (isinstance(event.data, dict), "data must be a JSON object"),
        (isinstance(event.occurred_at, datetime), "occurred_at must be a datetime"),
    ]
    return next((message for ok, message in checks if not ok), None)


def _text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 200


def _count(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum
