"""Points, decided by their owner. Every change is one transaction through `ExtractionData` that
locks the member's row, checks its key on the ledger and writes balance and ledger line
together, so a repeat of any change (a retried call, a redelivered event) changes nothing.

Debits are calls, because only the owner can say whether the balance allows them:
- `spend`: a points payment ("spend"), or the points a refunded card payment had earned
  ("take-back"). Keyed by the caller's attempt key, minted before the call;
- `cancel`: the compensation of a spend whose payment then failed. A cancel that overtakes
  its spend (the call timed out on the way) leaves a tombstone that makes the spend refuse.

Credits are events (`shop.payments`), because nothing can refuse them, they can only be
late: `apply_payment_event` earns a card payment's points on PaymentCompleted and gives a
points payment's points back on PaymentRefunded, keyed by (payment id, reason). The monolith,
while it moved points itself, wrote the same keys, so its events find their lines there.

Every move of a balance (`_move`) also moves the member's version and announces
MemberPointsChanged on `shop.members`, with the delta and the ledger's reason, in its
transaction (services/member/events.py); a line that moves nothing (a cancel that overtook
its spend) changes no balance and announces nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from libs.dualwrite import WriteTransaction
from libs.events.envelope import Event
from libs.extraction import ExtractionData, Reads
from services.member import events
from services.member.domain.errors import Conflict, Invalid, member_not_found
from services.member.service_layer import commands
from services.member.service_layer.members import announce

EARN, SPEND, REFUND, TAKE_BACK, CANCEL = "earn", "spend", "refund", "take-back", "cancel"
DEBITS = (SPEND, TAKE_BACK)
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{7,56}$")
_CANCELLED = "cancel:"


def spend(cmd: commands.SpendPoints, data: ExtractionData) -> dict[str, Any]:
    _check_spend(cmd)
    now = datetime.now(UTC)
    with data.writing() as tx:
        balance = _balance(tx, cmd.member_id)
        first = _keyed_line(tx, cmd.key)
        if first is not None:
            _same_member(first, cmd.member_id, cmd.key)
            return {"balance": balance, "spent": -first["delta"], "applied": False}
        if _keyed_line(tx, _CANCELLED + cmd.key) is not None:
            raise Conflict("SPEND_CANCELLED", f"Spend {cmd.key} was cancelled before it arrived.")
        if cmd.reason == TAKE_BACK and not _has_line(tx, cmd.payment_id, EARN):
            # The earn this reverses is still on its way: apply it now, so the take-back
            # reverses something; its event, when it comes, finds the line and does nothing.
            _move(data, tx, cmd.member_id, cmd.amount, EARN, cmd.payment_id, None, now)
            balance += cmd.amount
        if balance < cmd.amount:
            raise Conflict(
                "INSUFFICIENT_POINTS",
                f"The balance is {balance} points; {cmd.amount} are needed.",
            )
        _move(data, tx, cmd.member_id, -cmd.amount, cmd.reason, cmd.payment_id, cmd.key, now)
        return {"balance": balance - cmd.amount, "spent": cmd.amount, "applied": True}


def cancel(cmd: commands.CancelSpend, data: ExtractionData) -> dict[str, Any]:
    if not _KEY.match(cmd.key or ""):
        raise _bad_key()
    now = datetime.now(UTC)
    with data.writing() as tx:
        balance = _balance(tx, cmd.member_id)
        if (done := _keyed_line(tx, _CANCELLED + cmd.key)) is not None:
            _same_member(done, cmd.member_id, cmd.key)
            return {"balance": balance, "restored": done["delta"], "applied": False}
        spent = _keyed_line(tx, cmd.key)
        if spent is not None:
            _same_member(spent, cmd.member_id, cmd.key)
        restored = -spent["delta"] if spent is not None else 0
        payment_id = spent["payment_id"] if spent is not None else None
        _move(data, tx, cmd.member_id, restored, CANCEL, payment_id, _CANCELLED + cmd.key, now)
        return {"balance": balance + restored, "restored": restored, "applied": True}


def apply_payment_event(event: Event, data: ExtractionData) -> bool:
    """The member service's consumer of `shop.payments`: True when it changed something,
    False when the ledger shows it was done already (or the event asks nothing of points).
    Raises on an event it cannot apply (a field missing, an unknown member): parked."""
    if event.type == "PaymentCompleted":
        reason, amount_field, key_field = EARN, "points_earned", "points_spend_key"
    elif event.type == "PaymentRefunded":
        reason, amount_field, key_field = REFUND, "points_spent", "points_take_back_key"
    else:
        return False
    body = event.data
    member_id, payment_id = event.count("member_id"), event.count("payment_id")
    amount, key = event.count(amount_field, minimum=0), body.get(key_field)

    def credit_due(tx: Reads) -> bool:
        return bool(amount) and not _has_line(tx, payment_id, reason)

    def link_due(tx: Reads) -> bool:
        line = _keyed_line(tx, key) if key else None
        return line is not None and line["payment_id"] is None

    # Most events find their lines there already (the monolith wrote them while it moved
    # points itself; a redelivery): a read says so without taking the write lock.
    with data.reading() as seen:
        _balance(seen, member_id, lock=False)
        if not (credit_due(seen) or link_due(seen)):
            return False
    now = datetime.now(UTC)
    with data.writing() as tx:
        _balance(tx, member_id)  # locked: the checks again, under the lock
        applied = False
        if credit_due(tx):
            _move(data, tx, member_id, amount, reason, payment_id, None, now)
            applied = True
        if link_due(tx):
            tx.write(
                "point_ledger",
                lambda t: t.update().where(t.c.spend_key == key).values(payment_id=payment_id),
            )
            applied = True
        return applied


def history(member_id: int, data: ExtractionData, limit: int = 20) -> dict[str, Any]:
    def lines(t: sa.Table) -> sa.Select:
        columns = (t.c.delta, t.c.reason, t.c.payment_id, t.c.created_at)
        query = sa.select(*columns).where(t.c.member_id == member_id)
        return query.order_by(t.c.id.desc()).limit(limit)

    with data.reading() as tx:
        balance = _balance(tx, member_id, lock=False)
        rows = tx.read("point_ledger", lines).mappings().all()
    return {"balance": balance, "history": [dict(r) for r in rows]}


def _check_spend(cmd: commands.SpendPoints) -> None:
    if not _KEY.match(cmd.key or ""):
        raise _bad_key()
    if cmd.reason not in DEBITS or cmd.amount <= 0:
        raise Invalid(
            "INVALID_POINTS_CHANGE",
            f"Send a positive amount and a reason in {list(DEBITS)}, not {cmd.reason!r} "
            f"for {cmd.amount}.",
        )
    if cmd.reason == TAKE_BACK and not (cmd.payment_id or 0) > 0:
        raise Invalid("INVALID_POINTS_CHANGE", "A take-back names the refunded payment's id.")


def _bad_key() -> Invalid:
    return Invalid(
        "INVALID_SPEND_KEY",
        "Send the attempt's key: 8 to 57 letters, digits or '_.:-', as minted by the caller.",
    )


def _same_member(line: sa.RowMapping, member_id: int, key: str) -> None:
    if line["member_id"] != member_id:
        raise Conflict("SPEND_KEY_TAKEN", f"Key {key} belongs to another member's change.")


def _move(
    data: ExtractionData,
    tx: WriteTransaction,
    member_id: int,
    delta: int,
    reason: str,
    payment_id: int | None,
    key: str | None,
    now: datetime,
) -> None:
    """Balance, version, ledger line and event together; `now` computed once, since dual
    mode runs each builder once per DB and both must get the same row."""
    line = {"member_id": member_id, "delta": delta, "reason": reason}
    line |= {"payment_id": payment_id, "spend_key": key, "created_at": now}
    tx.write("point_ledger", lambda t: t.insert().values(**line))
    if not delta:
        return  # a tombstone (a cancel before its spend): no balance moved, nothing to say
    tx.write(
        "members",
        lambda t: (
            t.update()
            .where(t.c.id == member_id)
            .values(points=t.c.points + delta, version=t.c.version + 1, updated_at=now)
        ),
    )
    announce(tx, data, member_id, lambda member: events.points_changed(member, delta, reason))


def _keyed_line(tx: Reads, key: str) -> sa.RowMapping | None:
    return (
        tx.read("point_ledger", lambda t: sa.select(t).where(t.c.spend_key == key))
        .mappings()
        .first()
    )


def _has_line(tx: Reads, payment_id: int | None, reason: str) -> bool:
    def select(t: sa.Table) -> sa.Select:
        return sa.select(t.c.id).where(t.c.payment_id == payment_id, t.c.reason == reason)

    return tx.read("point_ledger", select).first() is not None


def _balance(tx: Reads, member_id: int, *, lock: bool = True) -> int:
    # The member row is locked first (PostgreSQL; SQLite's writer lock already holds), so two
    # changes of one member queue and the second sees the first's ledger line and balance.
    def select(t: sa.Table) -> sa.Select:
        query = sa.select(t.c.points).where(t.c.id == member_id)
        return query.with_for_update() if lock else query

    points = tx.read("members", select).scalar()
    if points is None:
        raise member_not_found(member_id)
    return points
