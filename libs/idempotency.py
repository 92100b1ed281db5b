"""Idempotency keys: a retried write with the same key (a payment, a refund, an order
placement, a signup) answers the first result instead of doing it twice; the same key with a
different request is refused. The key is stored in the same transaction as the write it
describes, so either both exist or neither does. Where the table is read and written is the
caller's (`Keys`): the monolith's connection, or an extracted service's data door
(`DoorKeys`), so each kind of key moves with the data it answers for."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from libs.db.types import ID, Timestamp
from libs.errors import Invalid

Build = Callable[[sa.Table], sa.Executable]


def key_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """A table of idempotency keys: one row per (member, key), the request's fingerprint and
    the answer it got. Every kind of key (payments', placements', signups') has one, in the
    DB of the data it answers for."""
    return sa.Table(
        name,
        metadata,
        sa.Column("member_id", ID, primary_key=True),
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("operation", sa.String(40), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
    )


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool = False


class Keys(Protocol):
    def read(self, build: Build) -> sa.Result: ...

    def write(self, build: Build) -> sa.CursorResult: ...


@dataclass(frozen=True)
class DoorKeys:
    """One key table through a data door's transaction (libs/extraction: `read` in any,
    `write` only in a write transaction), by the table's name in the migration spec."""

    tx: Any
    table: str

    def read(self, build: Build) -> sa.Result:
        return self.tx.read(self.table, build)

    def write(self, build: Build) -> sa.CursorResult:
        return self.tx.write(self.table, build)


def fingerprint(operation: str, **request: Any) -> str:
    return hashlib.sha256(json.dumps([operation, request], sort_keys=True).encode()).hexdigest()


def replay(
    keys: Keys, member_id: int, key: str | None, operation: str, request_hash: str
) -> Outcome | None:
    if key is None:
        return None
    row = (
        keys.read(lambda t: sa.select(t).where(t.c.member_id == member_id, t.c.key == key))
        .mappings()
        .first()
    )
    if row is None:
        return None
    if row["operation"] != operation or row["request_hash"] != request_hash:
        raise Invalid(
            "IDEMPOTENCY_KEY_REUSED",
            "This Idempotency-Key was already used for a different request.",
        )
    return Outcome(row["status_code"], row["response"], replayed=True)


def remember(
    keys: Keys,
    member_id: int,
    key: str | None,
    operation: str,
    request_hash: str,
    outcome: Outcome,
) -> None:
    if key is None:
        return
    values = {"member_id": member_id, "key": key, "operation": operation}
    values |= {"request_hash": request_hash, "status_code": outcome.status}
    values |= {"response": outcome.body, "created_at": datetime.now(UTC)}
    keys.write(lambda t: t.insert().values(**values))


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """The answer as it is stored and replayed: dates as ISO strings, at any depth (an order's
    lines are a list of dicts)."""
    return {k: _jsonable_value(v) for k, v in row.items()}


def _jsonable_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return jsonable(value)
    if isinstance(value, list | tuple):
        return [_jsonable_value(v) for v in value]
    return value
