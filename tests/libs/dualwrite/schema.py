"""The member tables as the first extraction moves them: legacy tables from the monolith,
the new DB's tables as copies of them (the member service's migrations will own these)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from libs.dualwrite.spec import MigrationSpec, TableSpec, mirror
from monolith.adapters import tables

new_metadata = sa.MetaData()
_new = mirror([tables.members, tables.point_ledger], new_metadata)

MEMBERS = MigrationSpec(
    "members",
    (
        TableSpec(tables.members, _new["members"]),
        TableSpec(tables.point_ledger, _new["point_ledger"]),
    ),
)

LEGACY_TABLES = [tables.members, tables.point_ledger]


def member_values(email: str, points: int = 0) -> dict:
    now = datetime.now(UTC)
    return {
        "email": email,
        "password_hash": "x",
        "name": email.split("@")[0][:50],
        "points": points,
        "created_at": now,
        "updated_at": now,
    }


def ledger_values(member_id: int, delta: int) -> dict:
    return {
        "member_id": member_id,
        "delta": delta,
        "reason": "test",
        "created_at": datetime.now(UTC),
    }
