"""Payment handlers. The order row is locked first, then the idempotency key is looked up, so
two concurrent retries of one payment queue behind each other and the second replays the
first's result instead of failing or charging again.

Points (service_layer/points.py): locally they move in the payment's transaction. Once the
member service owns them, a debit is its decision, asked before that transaction under a key
committed first, and given back if the payment then fails; the credits follow from the
payment's event. Every payment and refund writes its event (service_layer/events.py) in its
own transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from libs.errors import NotFound
from monolith.adapters.tables import payments
from monolith.domain import orders as order_rules
from monolith.domain import payments as rules
from monolith.service_layer import commands, events, idempotency
from monolith.service_layer.idempotency import Outcome
from monolith.service_layer.orders import load as load_order
from monolith.service_layer.orders import restore_stock, set_status
from monolith.service_layer.points import (
    EARN,
    REFUND,
    SPEND,
    TAKE_BACK,
    Debit,
    MemberServicePoints,
    Points,
)
from monolith.service_layer.unit_of_work import UnitOfWork


def pay(cmd: commands.Pay, uow: UnitOfWork, points: Points) -> Outcome:
    request_hash = idempotency.fingerprint("pay", order_id=cmd.order_id, method=cmd.method)
    debit = None
    if isinstance(points, MemberServicePoints) and cmd.method == rules.POINTS:
        with uow:
            order, earlier = _payable(uow.conn, cmd, request_hash)
            if earlier:
                return earlier
            spent = rules.points_spent(cmd.method, order["total"])
            if spent:
                debit = points.intend(uow.conn, cmd.member_id, spent, SPEND, order["id"])
                uow.commit()
        if debit:
            points.debit(debit)
    try:
        with uow:
            order, earlier = _payable(uow.conn, cmd, request_hash)
            if not earlier:
                spent = rules.points_spent(cmd.method, order["total"])
                earned = rules.points_earned(cmd.method, order["total"])
                payment_id = _insert_payment(uow.conn, cmd, order["total"], spent)
                changes = {SPEND: -spent, EARN: earned}
                points.settle(uow.conn, cmd.member_id, payment_id, changes, debit)
                set_status(uow.conn, cmd.order_id, order_rules.PAID)
                payment = _get(uow.conn, payment_id, cmd.member_id)
                events.payment_completed(uow.conn, payment, debit.key if debit else None)
                outcome = Outcome(201, idempotency.jsonable(payment))
                idempotency.remember(
                    uow.conn, cmd.member_id, cmd.idempotency_key, "pay", request_hash, outcome
                )
                uow.commit()
    except BaseException:
        _give_back(points, debit)  # after the rollback: SQLite's write lock is free again
        raise
    if earlier:  # the same request committed meanwhile: its payment stands, not this debit
        _give_back(points, debit)
        return earlier
    return outcome


def refund(cmd: commands.Refund, uow: UnitOfWork, points: Points) -> Outcome:
    request_hash = idempotency.fingerprint("refund", payment_id=cmd.payment_id)
    debit = None
    if isinstance(points, MemberServicePoints):
        with uow:
            payment, earlier = _refundable(uow.conn, cmd, request_hash)
            if earlier:
                return earlier
            if payment["points_earned"]:
                debit = points.intend(
                    uow.conn,
                    cmd.member_id,
                    payment["points_earned"],
                    TAKE_BACK,
                    payment["order_id"],
                    payment["id"],
                )
                uow.commit()
        if debit:
            points.debit(debit)
    try:
        with uow:
            payment, earlier = _refundable(uow.conn, cmd, request_hash)
            if not earlier:
                order = load_order(uow.conn, payment["order_id"], cmd.member_id, lock=True)
                changes = {TAKE_BACK: -payment["points_earned"], REFUND: payment["points_spent"]}
                points.settle(uow.conn, cmd.member_id, cmd.payment_id, changes, debit)
                uow.conn.execute(
                    payments.update()
                    .where(payments.c.id == cmd.payment_id)
                    .values(status=rules.REFUNDED, updated_at=datetime.now(UTC))
                )
                set_status(uow.conn, order["id"], order_rules.REFUNDED)
                restore_stock(uow.conn, order)
                refunded = _get(uow.conn, cmd.payment_id, cmd.member_id)
                events.payment_refunded(uow.conn, refunded, debit.key if debit else None)
                outcome = Outcome(200, idempotency.jsonable(refunded))
                idempotency.remember(
                    uow.conn, cmd.member_id, cmd.idempotency_key, "refund", request_hash, outcome
                )
                uow.commit()
    except BaseException:
        _give_back(points, debit)
        raise
    if earlier:
        _give_back(points, debit)
        return earlier
    return outcome


def _payable(
    conn: sa.Connection, cmd: commands.Pay, request_hash: str
) -> tuple[dict[str, Any], Outcome | None]:
    order = load_order(conn, cmd.order_id, cmd.member_id, lock=True)
    earlier = idempotency.replay(conn, cmd.member_id, cmd.idempotency_key, "pay", request_hash)
    if not earlier:
        order_rules.ensure_payable(order["status"])
    return order, earlier


def _refundable(
    conn: sa.Connection, cmd: commands.Refund, request_hash: str
) -> tuple[dict[str, Any], Outcome | None]:
    payment = _get(conn, cmd.payment_id, cmd.member_id, lock=True)
    earlier = idempotency.replay(conn, cmd.member_id, cmd.idempotency_key, "refund", request_hash)
    if not earlier:
        rules.ensure_refundable(payment["status"])
    return payment, earlier


def _give_back(points: Points, debit: Debit | None) -> None:
    """A debit whose payment did not commit goes back to the member (never raises)."""
    if debit is not None and isinstance(points, MemberServicePoints):
        points.give_back(debit)


def get_payment(payment_id: int, member_id: int, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return idempotency.jsonable(_get(uow.conn, payment_id, member_id))


def _insert_payment(conn: sa.Connection, cmd: commands.Pay, amount: int, spent: int) -> int:
    now = datetime.now(UTC)
    inserted = conn.execute(
        payments.insert().values(
            order_id=cmd.order_id,
            member_id=cmd.member_id,
            amount=amount,
            method=cmd.method,
            status=rules.CAPTURED,
            points_earned=rules.points_earned(cmd.method, amount),
            points_spent=spent,
            created_at=now,
            updated_at=now,
        )
    ).inserted_primary_key
    assert inserted is not None  # a single-row insert always has its key
    return inserted[0]


def _get(
    conn: sa.Connection, payment_id: int, member_id: int, lock: bool = False
) -> dict[str, Any]:
    query = sa.select(payments).where(
        payments.c.id == payment_id, payments.c.member_id == member_id
    )
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    if row is None:
        raise NotFound("PAYMENT_NOT_FOUND", f"Payment {payment_id} does not exist.")
    return dict(row)
