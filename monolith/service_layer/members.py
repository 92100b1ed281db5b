"""Member handlers: signup, login, profile, points.

Every change of a member row moves its `version` by one in SQL and writes the member's new
state to the outbox in the same transaction, as a `shop.members` event whose shape is the
member service's (services/member/events.py): the member service writes the same rows, and
the same events, from its shared-DB stage on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from libs.auth import hash_password, verify_password
from libs.errors import Conflict, NotFound, Unauthorized
from libs.events.envelope import Event
from monolith.adapters.tables import members, point_ledger, signup_idempotency_keys
from monolith.service_layer import commands, idempotency
from monolith.service_layer.events import outbox
from monolith.service_layer.idempotency import Outcome
from monolith.service_layer.unit_of_work import UnitOfWork
from services.member import events as member_events
from services.member.service_layer.commands import ANONYMOUS, SIGNUP, signup_hash

PUBLIC_COLUMNS = (
    members.c.id,
    members.c.email,
    members.c.name,
    members.c.phone,
    members.c.points,
    members.c.created_at,
    members.c.updated_at,
)


def signup(cmd: commands.Signup, uow: UnitOfWork) -> Outcome:
    """With an Idempotency-Key, a retry (the same key, email, name and phone) answers the
    first signup again instead of EMAIL_TAKEN; the same key with other values is refused."""
    email = cmd.email.strip().lower()
    request_hash = signup_hash(email, cmd.name, cmd.phone)
    # Hash before the transaction: argon2 is deliberately slow, and holding the write lock
    # while it runs would queue every other writer behind it.
    password_hash = hash_password(cmd.password)
    try:
        return _signup(cmd, uow, email, password_hash, request_hash)
    except sa.exc.IntegrityError:
        # A concurrent retry with the same key signed up first: answer its result.
        with uow:
            earlier = _replay(uow.conn, cmd.idempotency_key, request_hash)
        if earlier is None:
            raise
        return earlier


def _replay(conn: sa.Connection, key: str | None, request_hash: str) -> Outcome | None:
    return idempotency.replay(conn, ANONYMOUS, key, SIGNUP, request_hash, signup_idempotency_keys)


def _signup(
    cmd: commands.Signup, uow: UnitOfWork, email: str, password_hash: str, request_hash: str
) -> Outcome:
    with uow:
        earlier = _replay(uow.conn, cmd.idempotency_key, request_hash)
        if earlier is not None:
            return earlier
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
                version=1,  # the member's first change, the sequence of its first event
            )
        ).inserted_primary_key
        assert inserted is not None  # a single-row insert always has its key
        member_id = inserted[0]
        _announce(uow.conn, member_id, member_events.member_registered)
        outcome = Outcome(201, idempotency.jsonable(_get(uow.conn, member_id)))
        idempotency.remember(
            uow.conn,
            ANONYMOUS,
            cmd.idempotency_key,
            SIGNUP,
            request_hash,
            outcome,
            signup_idempotency_keys,
        )
        uow.commit()
    return outcome


def login(cmd: commands.Login, uow: UnitOfWork) -> int:
    with uow:
        row = uow.conn.execute(
            sa.select(members.c.id, members.c.password_hash).where(
                members.c.email == cmd.email.strip().lower()
            )
        ).first()
    # Verified even when there is no such member (against a dummy hash): the same time.
    if not verify_password(row.password_hash if row else None, cmd.password) or row is None:
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
            .values(**changes, version=members.c.version + 1, updated_at=datetime.now(UTC))
        )
        _announce(uow.conn, cmd.member_id, member_events.profile_changed)
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
    """Balance, version, ledger and the member's event move together, in the caller's
    transaction."""
    now = datetime.now(UTC)
    conn.execute(
        members.update()
        .where(members.c.id == member_id)
        .values(points=members.c.points + delta, version=members.c.version + 1, updated_at=now)
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
    _announce(conn, member_id, lambda member: member_events.points_changed(member, delta, reason))


def _announce(
    conn: sa.Connection, member_id: int, build: Callable[[dict[str, Any]], Event]
) -> None:
    """After a change of the member's row, in its transaction: the event `build` makes of the
    row as it now is (its version moved in SQL, so it is read back, not computed here)."""
    outbox.add(conn, member_events.TOPIC, build(_get(conn, member_id, member_events.COLUMNS)))


def _get(
    conn: sa.Connection, member_id: int, columns: tuple[str, ...] | None = None
) -> dict[str, Any]:
    selected = PUBLIC_COLUMNS if columns is None else [members.c[name] for name in columns]
    row = conn.execute(sa.select(*selected).where(members.c.id == member_id)).mappings().first()
    if row is None:
        raise NotFound("MEMBER_NOT_FOUND", f"Member {member_id} does not exist.")
    return dict(row)
