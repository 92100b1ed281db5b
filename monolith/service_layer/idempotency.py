"""Idempotency keys in the legacy DB, on the command's connection: the rules are the payment
domain's (libs/idempotency.py), which the payment and order services run on their
own data. Each kind of key has its table, which moves with the data it answers for:
payments' keys (`idempotency_keys`) with the payments, order placements' keys
(`order_idempotency_keys`) with the orders."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from libs import idempotency as keys
from libs.idempotency import Build, Outcome, fingerprint, jsonable
from monolith.adapters.tables import idempotency_keys

__all__ = ["Outcome", "fingerprint", "jsonable", "remember", "replay"]


@dataclass(frozen=True)
class _OnConnection:
    conn: sa.Connection
    table: sa.Table

    def read(self, build: Build) -> sa.Result:
        return self.conn.execute(build(self.table))

    def write(self, build: Build) -> sa.CursorResult:
        return self.conn.execute(build(self.table))


def replay(
    conn: sa.Connection,
    member_id: int,
    key: str | None,
    operation: str,
    request_hash: str,
    table: sa.Table = idempotency_keys,
) -> Outcome | None:
    return keys.replay(_OnConnection(conn, table), member_id, key, operation, request_hash)


def remember(
    conn: sa.Connection,
    member_id: int,
    key: str | None,
    operation: str,
    request_hash: str,
    outcome: Outcome,
    table: sa.Table = idempotency_keys,
) -> None:
    on = _OnConnection(conn, table)
    keys.remember(on, member_id, key, operation, request_hash, outcome)
