"""Idempotency keys in the legacy DB, on the payment's connection: the rules are the payment
domain's (services/payment/idempotency.py), which the payment service runs on its own data."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from monolith.adapters.tables import idempotency_keys
from services.payment import idempotency as keys
from services.payment.idempotency import Build, Outcome, fingerprint, jsonable

__all__ = ["Outcome", "fingerprint", "jsonable", "remember", "replay"]


@dataclass(frozen=True)
class _OnConnection:
    conn: sa.Connection

    def read(self, build: Build) -> sa.Result:
        return self.conn.execute(build(idempotency_keys))

    def write(self, build: Build) -> sa.CursorResult:
        return self.conn.execute(build(idempotency_keys))


def replay(
    conn: sa.Connection, member_id: int, key: str | None, operation: str, request_hash: str
) -> Outcome | None:
    return keys.replay(_OnConnection(conn), member_id, key, operation, request_hash)


def remember(
    conn: sa.Connection,
    member_id: int,
    key: str | None,
    operation: str,
    request_hash: str,
    outcome: Outcome,
) -> None:
    keys.remember(_OnConnection(conn), member_id, key, operation, request_hash, outcome)
