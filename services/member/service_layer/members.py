"""Member handlers: signup, login, profile, points. Each is one transaction through
`MemberData`, whose data mode decides which DB it reaches (docs/decisions/0001)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from libs.auth import hash_password, verify_password
from services.member.adapters.data import MemberData, Reads
from services.member.domain.errors import Conflict, Invalid, Unauthorized, member_not_found
from services.member.domain.members import normalise_email, profile_changes
from services.member.service_layer import commands

PUBLIC = ("id", "email", "name", "phone", "points", "created_at", "updated_at")


def signup(cmd: commands.Signup, data: MemberData) -> dict[str, Any]:
    email = normalise_email(cmd.email)
    # Computed once, outside the statement: in dual mode the builder runs once per DB, and
    # each DB must get the same hash and the same timestamps. Hashing before the transaction
    # also keeps argon2's deliberate slowness out of the write lock.
    password_hash, now = hash_password(cmd.password), datetime.now(UTC)
    values = {"email": email, "password_hash": password_hash, "name": cmd.name}
    values |= {"phone": cmd.phone, "points": 0, "created_at": now, "updated_at": now}
    with data.writing() as tx:
        if tx.read("members", lambda t: sa.select(t.c.id).where(t.c.email == email)).first():
            raise Conflict("EMAIL_TAKEN", "A member with this email already exists.")
        created = tx.write("members", lambda t: t.insert().values(**values))
        return _get(tx, created.inserted_primary_key[0])


def login(cmd: commands.Login, data: MemberData) -> int:
    email = normalise_email(cmd.email)
    with data.reading() as tx:
        row = tx.read(
            "members", lambda t: sa.select(t.c.id, t.c.password_hash).where(t.c.email == email)
        ).first()
    if row is None or not verify_password(row.password_hash, cmd.password):
        raise Unauthorized("INVALID_CREDENTIALS", "The email or password is wrong.")
    return row.id


def profile(member_id: int, data: MemberData) -> dict[str, Any]:
    with data.reading() as tx:
        return _get(tx, member_id)


def update_profile(cmd: commands.UpdateProfile, data: MemberData) -> dict[str, Any]:
    changes = profile_changes(cmd.name, cmd.phone) | {"updated_at": datetime.now(UTC)}
    with data.writing() as tx:
        _get(tx, cmd.member_id)
        tx.write("members", lambda t: t.update().where(t.c.id == cmd.member_id).values(**changes))
        return _get(tx, cmd.member_id)


def points(member_id: int, data: MemberData, limit: int = 20) -> dict[str, Any]:
    def history(t: sa.Table) -> sa.Select:
        columns = (t.c.delta, t.c.reason, t.c.payment_id, t.c.created_at)
        return sa.select(*columns).where(t.c.member_id == member_id).order_by(t.c.id.desc())

    with data.reading() as tx:
        balance = _get(tx, member_id)["points"]
        rows = tx.read("point_ledger", lambda t: history(t).limit(limit)).mappings().all()
    return {"balance": balance, "history": [dict(r) for r in rows]}


REASONS = ("pay", "refund")


def adjust_points(cmd: commands.AdjustPoints, data: MemberData) -> dict[str, Any]:
    """Balance and ledger line move together, once per (payment_id, reason): the caller
    delivers from an outbox and may repeat a call whose answer it never saw."""
    if cmd.delta == 0 or cmd.reason not in REASONS or cmd.payment_id <= 0:
        raise Invalid(
            "INVALID_POINTS_CHANGE",
            f"Send a non-zero delta, a reason in {list(REASONS)} and a payment id.",
        )
    now = datetime.now(UTC)
    with data.writing() as tx:
        # The member row is locked first (PostgreSQL; SQLite's writer lock already holds),
        # so two deliveries of one change queue and the second finds the first's ledger line.
        balance = _balance(tx, cmd.member_id, lock=True)
        done = tx.read(
            "point_ledger",
            lambda t: sa.select(t.c.id).where(
                t.c.payment_id == cmd.payment_id, t.c.reason == cmd.reason
            ),
        ).first()
        if done:
            return {"balance": balance, "applied": False}
        if balance + cmd.delta < 0:
            raise Conflict(
                "INSUFFICIENT_POINTS",
                f"The balance is {balance} points; the change is {cmd.delta}.",
            )
        tx.write(
            "members",
            lambda t: (
                t.update()
                .where(t.c.id == cmd.member_id)
                .values(points=t.c.points + cmd.delta, updated_at=now)
            ),
        )
        line = {"member_id": cmd.member_id, "delta": cmd.delta, "reason": cmd.reason}
        line |= {"payment_id": cmd.payment_id, "created_at": now}
        tx.write("point_ledger", lambda t: t.insert().values(**line))
        return {"balance": balance + cmd.delta, "applied": True}


def _balance(tx: Reads, member_id: int, *, lock: bool = False) -> int:
    def select(t: sa.Table) -> sa.Select:
        query = sa.select(t.c.points).where(t.c.id == member_id)
        return query.with_for_update() if lock else query

    points = tx.read("members", select).scalar()
    if points is None:
        raise member_not_found(member_id)
    return points


def _get(tx: Reads, member_id: int) -> dict[str, Any]:
    def select(t: sa.Table) -> sa.Select:
        return sa.select(*(t.c[name] for name in PUBLIC)).where(t.c.id == member_id)

    row = tx.read("members", select).mappings().first()
    if row is None:
        raise member_not_found(member_id)
    return dict(row)
