"""Member handlers: signup, login, profile, points. Each is one transaction through
`ExtractionData`, whose data mode decides which DB it reaches (docs/decisions/0001).

Every change of a member row moves its `version` by one in SQL and announces the member's new
state on `shop.members` (services/member/events.py) in the same transaction, through
`ExtractionData.announce`: into the legacy DB's outbox while the service shares that DB, its
own from dual write on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from libs import idempotency
from libs.auth import hash_password, verify_password
from libs.dualwrite import WriteTransaction
from libs.events.envelope import Event
from libs.events.outbox import Outbox
from libs.extraction import ExtractionData, Reads
from libs.idempotency import DoorKeys, Outcome
from services.member import events
from services.member.adapters.tables import event_outbox
from services.member.domain.errors import Conflict, Unauthorized, member_not_found
from services.member.domain.members import normalise_email, profile_changes
from services.member.service_layer import commands

PUBLIC = ("id", "email", "name", "phone", "points", "created_at", "updated_at")
outbox = Outbox(event_outbox)


def signup(cmd: commands.Signup, data: ExtractionData) -> Outcome:
    """With an Idempotency-Key, a retry (the same key, email, name and phone) answers the
    first signup again instead of EMAIL_TAKEN; the same key with other values is refused."""
    request_hash = commands.signup_hash(normalise_email(cmd.email), cmd.name, cmd.phone)
    try:
        return _signup(cmd, data, request_hash)
    except sa.exc.IntegrityError:
        # A concurrent retry with the same key signed up first: answer its result.
        with data.reading() as tx:
            earlier = _replay(tx, cmd.idempotency_key, request_hash)
        if earlier is None:
            raise
        return earlier


def _replay(tx: Reads, key: str | None, request_hash: str) -> Outcome | None:
    return idempotency.replay(
        DoorKeys(tx, "signup_idempotency_keys"),
        commands.ANONYMOUS,
        key,
        commands.SIGNUP,
        request_hash,
    )


def _signup(cmd: commands.Signup, data: ExtractionData, request_hash: str) -> Outcome:
    email = normalise_email(cmd.email)
    # Computed once, outside the statement: in dual mode the builder runs once per DB, and
    # each DB must get the same hash and the same timestamps. Hashing before the transaction
    # also keeps argon2's deliberate slowness out of the write lock.
    password_hash, now = hash_password(cmd.password), datetime.now(UTC)
    values: dict[str, Any] = {"email": email, "password_hash": password_hash, "name": cmd.name}
    values |= {"phone": cmd.phone, "points": 0, "created_at": now, "updated_at": now}
    with data.writing() as tx:
        earlier = _replay(tx, cmd.idempotency_key, request_hash)
        if earlier is not None:
            return earlier
        if tx.read("members", lambda t: sa.select(t.c.id).where(t.c.email == email)).first():
            raise Conflict("EMAIL_TAKEN", "A member with this email already exists.")
        # A new row is the member's first change: version 1, the sequence of its first event.
        created = tx.write("members", lambda t: t.insert().values(**values, version=1))
        inserted = created.inserted_primary_key
        assert inserted is not None  # a single-row insert always has its key
        announce(tx, data, inserted[0], events.member_registered)
        outcome = Outcome(201, idempotency.jsonable(_get(tx, inserted[0])))
        idempotency.remember(
            DoorKeys(tx, "signup_idempotency_keys"),
            commands.ANONYMOUS,
            cmd.idempotency_key,
            commands.SIGNUP,
            request_hash,
            outcome,
        )
        return outcome


def login(cmd: commands.Login, data: ExtractionData) -> int:
    email = normalise_email(cmd.email)
    with data.reading() as tx:
        row = tx.read(
            "members", lambda t: sa.select(t.c.id, t.c.password_hash).where(t.c.email == email)
        ).first()
    # Verified even when there is no such member (against a dummy hash): the same time.
    if not verify_password(row.password_hash if row else None, cmd.password) or row is None:
        raise Unauthorized("INVALID_CREDENTIALS", "The email or password is wrong.")
    return row.id


def profile(member_id: int, data: ExtractionData) -> dict[str, Any]:
    with data.reading() as tx:
        return _get(tx, member_id)


def update_profile(cmd: commands.UpdateProfile, data: ExtractionData) -> dict[str, Any]:
    changes = profile_changes(cmd.name, cmd.phone) | {"updated_at": datetime.now(UTC)}
    with data.writing() as tx:
        _get(tx, cmd.member_id)
        tx.write(
            "members",
            lambda t: (
                t.update().where(t.c.id == cmd.member_id).values(**changes, version=t.c.version + 1)
            ),
        )
        announce(tx, data, cmd.member_id, events.profile_changed)
        return _get(tx, cmd.member_id)


def announce(
    tx: WriteTransaction,
    data: ExtractionData,
    member_id: int,
    build: Callable[[dict[str, Any]], Event],
) -> None:
    """After a change of the member's row, in its transaction: the event `build` makes of
    the row as it now is, in the outbox of the DB of record. The row is read back rather than
    its version computed here, since `version + 1` ran in SQL (in each DB, in dual mode)."""
    member = _get(tx, member_id, events.COLUMNS)
    data.announce(tx, outbox, events.TOPIC, build(member))


def _get(tx: Reads, member_id: int, columns: tuple[str, ...] = PUBLIC) -> dict[str, Any]:
    def select(t: sa.Table) -> sa.Select:
        return sa.select(*(t.c[name] for name in columns)).where(t.c.id == member_id)

    row = tx.read("members", select).mappings().first()
    if row is None:
        raise member_not_found(member_id)
    return dict(row)
