"""Member handlers: signup, login, profile, points."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from libs.auth import hash_password, verify_password
from libs.errors import Conflict, NotFound, Unauthorized
from monolith.adapters.tables import members, point_ledger
from monolith.service_layer import commands
from monolith.service_layer.unit_of_work import UnitOfWork

PUBLIC_COLUMNS = (
    members.c.id,
    members.c.email,
    members.c.name,
    members.c.phone,
    members.c.points,
    members.c.created_at,
    members.c.updated_at,
)


def signup(cmd: commands.Signup, uow: UnitOfWork) -> dict[str, Any]:
    email = cmd.email.strip().lower()
    # Hash before the transaction: argon2 is deliberately slow, and holding the write lock
    # while it runs would queue every other writer behind it.
    password_hash = hash_password(cmd.password)
    with uow:
        if uow.conn.scalar(sa.select(members.c.id).where(members.c.email == email)):
            raise Conflict("EMAIL_TAKEN", "A member with this email already exists.")
        now = datetime.now(UTC)
        inserted = uow.conn.execute(
            members.insert().values(
                email=email,
                password_hash=password_hash,
                name=cmd.name,
                phone=cmd.phone,
                points=0,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key
        assert inserted is not None  # a single-row insert always has its key
        member_id = inserted[0]
        member = _get(uow.conn, member_id)
        uow.commit()
    return member


def login(cmd: commands.Login, uow: UnitOfWork) -> int:
    with uow:
        row = uow.conn.execute(
            sa.select(members.c.id, members.c.password_hash).where(
                members.c.email == cmd.email.strip().lower()
            )
        ).first()
    if row is None or not verify_password(row.password_hash, cmd.password):
        raise Unauthorized("INVALID_CREDENTIALS", "The email or password is wrong.")
    return row.id


def profile(member_id: int, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return _get(uow.conn, member_id)


def update_profile(cmd: commands.UpdateProfile, uow: UnitOfWork) -> dict[str, Any]:
    changes = {k: v for k, v in (("name", cmd.name), ("phone", cmd.phone)) if v is not None}
    with uow:
        _get(uow.conn, cmd.member_id)
        uow.conn.execute(
            members.update()
            .where(members.c.id == cmd.member_id)
            .values(**changes, updated_at=datetime.now(UTC))
        )
        member = _get(uow.conn, cmd.member_id)
        uow.commit()
    return member


def points(member_id: int, uow: UnitOfWork, limit: int = 20) -> dict[str, Any]:
    with uow:
        balance = _get(uow.conn, member_id)["points"]
        history = (
            uow.conn.execute(
                sa.select(
                    point_ledger.c.delta,
                    point_ledger.c.reason,
                    point_ledger.c.payment_id,
                    point_ledger.c.created_at,
                )
                .where(point_ledger.c.member_id == member_id)
                .order_by(point_ledger.c.id.desc())
                .limit(limit)
            )
            .mappings()
            .all()
        )
    return {"balance": balance, "history": [dict(h) for h in history]}


def change_points(
    conn: sa.Connection, member_id: int, delta: int, reason: str, payment_id: int
) -> None:
    """Balance and ledger move together, in the caller's transaction."""
    now = datetime.now(UTC)
    conn.execute(
        members.update()
        .where(members.c.id == member_id)
        .values(points=members.c.points + delta, updated_at=now)
    )
    conn.execute(
        point_ledger.insert().values(
            member_id=member_id,
            delta=delta,
            reason=reason,
            payment_id=payment_id,
            created_at=now,
        )
    )


def _get(conn: sa.Connection, member_id: int) -> dict[str, Any]:
    row = (
        conn.execute(sa.select(*PUBLIC_COLUMNS).where(members.c.id == member_id)).mappings().first()
    )
    if row is None:
        raise NotFound("MEMBER_NOT_FOUND", f"Member {member_id} does not exist.")
    return dict(row)
