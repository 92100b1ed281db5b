"""Idempotency keys: a retried payment (same key) returns the first result instead of charging
twice. The key is stored in the same transaction as the payment it describes, so either both
exist or neither does."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from libs.errors import Invalid
from monolith.adapters.tables import idempotency_keys


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def fingerprint(operation: str, **request: Any) -> str:
    return hashlib.sha256(json.dumps([operation, request], sort_keys=True).encode()).hexdigest()


def replay(
    conn: sa.Connection, member_id: int, key: str | None, operation: str, request_hash: str
) -> Outcome | None:
    if key is None:
        return None
    row = (
        conn.execute(
            sa.select(idempotency_keys).where(
                idempotency_keys.c.member_id == member_id, idempotency_keys.c.key == key
            )
        )
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
    conn: sa.Connection,
    member_id: int,
    key: str | None,
    operation: str,
    request_hash: str,
    outcome: Outcome,
) -> None:
    if key is None:
        return
    conn.execute(
        idempotency_keys.insert().values(
            member_id=member_id,
            key=key,
            operation=operation,
            request_hash=request_hash,
            status_code=outcome.status,
            response=outcome.body,
            created_at=datetime.now(UTC),
        )
    )


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in row.items()}
