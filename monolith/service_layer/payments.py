"""Payment handlers. The order row is locked first, then the idempotency key is looked up, so
two concurrent retries of one payment queue behind each other and the second replays the
first's result instead of failing or charging again.

Each command is a `check` (locks, replay, rules, the debit it needs) and an `apply` (the
change); `points.run` (service_layer/points.py) runs them in the transactions the owner of
points needs: one, locally; with the member service deciding a debit, the debit first under a
key committed before it, given back if the change then does not commit. Every payment and
refund writes its event (service_layer/events.py) in the change's own transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from libs.errors import NotFound
from monolith.adapters.tables import payments
from monolith.domain import orders as order_rules
from monolith.service_layer import commands, events, idempotency
from monolith.service_layer.idempotency import Outcome
from monolith.service_layer.orders import load as load_order
from monolith.service_layer.orders import restore_stock, set_status
from monolith.service_layer.points import (
    EARN,
    REFUND,
    SPEND,
    TAKE_BACK,
    Checked,
    Debit,
    DebitAsk,
    Points,
)
from monolith.service_layer.unit_of_work import UnitOfWork
from services.payment.domain import payments as rules


def pay(cmd: commands.Pay, uow: UnitOfWork, points: Points) -> Outcome:
    request_hash = idempotency.fingerprint("pay", order_id=cmd.order_id, method=cmd.method)

    def check(conn: sa.Connection) -> Checked:
        order = load_order(conn, cmd.order_id, cmd.member_id, lock=True)
        earlier = idempotency.replay(conn, cmd.member_id, cmd.idempotency_key, "pay", request_hash)
        if earlier:
            return Checked(earlier, order)
        order_rules.ensure_payable(order["status"])
        spent = rules.points_spent(cmd.method, order["total"])
        return Checked(
            None, order, DebitAsk(cmd.member_id, spent, SPEND, order["id"]) if spent else None
        )

    def apply(conn: sa.Connection, order: dict[str, Any], debit: Debit | None) -> Outcome:
        spent = rules.points_spent(cmd.method, order["total"])
        earned = rules.points_earned(cmd.method, order["total"])
        payment_id = _insert_payment(conn, cmd, order["total"], spent)
        points.settle(conn, cmd.member_id, payment_id, {SPEND: -spent, EARN: earned}, debit)
        set_status(conn, order, order_rules.PAID, payment_id)
        payment = _get(conn, payment_id, cmd.member_id)
        events.payment_completed(conn, payment, debit.key if debit else None)
        outcome = Outcome(201, idempotency.jsonable(payment))
        idempotency.remember(conn, cmd.member_id, cmd.idempotency_key, "pay", request_hash, outcome)
        return outcome

    return points.run(uow, check, apply)


def refund(cmd: commands.Refund, uow: UnitOfWork, points: Points) -> Outcome:
    request_hash = idempotency.fingerprint("refund", payment_id=cmd.payment_id)

    def check(conn: sa.Connection) -> Checked:
        payment = _get(conn, cmd.payment_id, cmd.member_id, lock=True)
        earlier = idempotency.replay(
            conn, cmd.member_id, cmd.idempotency_key, "refund", request_hash
        )
        if earlier:
            return Checked(earlier, payment)
        rules.ensure_refundable(payment["status"])
        earned = payment["points_earned"]
        take_back = DebitAsk(cmd.member_id, earned, TAKE_BACK, payment["order_id"], payment["id"])
        return Checked(None, payment, take_back if earned else None)

    def apply(conn: sa.Connection, payment: dict[str, Any], debit: Debit | None) -> Outcome:
        order = load_order(conn, payment["order_id"], cmd.member_id, lock=True)
        changes = {TAKE_BACK: -payment["points_earned"], REFUND: payment["points_spent"]}
        points.settle(conn, cmd.member_id, cmd.payment_id, changes, debit)
        conn.execute(
            payments.update()
            .where(payments.c.id == cmd.payment_id)
            .values(status=rules.REFUNDED, updated_at=datetime.now(UTC))
        )
        set_status(conn, order, order_rules.REFUNDED, cmd.payment_id)
        restore_stock(conn, order)
        refunded = _get(conn, cmd.payment_id, cmd.member_id)
        events.payment_refunded(conn, refunded, debit.key if debit else None)
        outcome = Outcome(200, idempotency.jsonable(refunded))
        idempotency.remember(
            conn, cmd.member_id, cmd.idempotency_key, "refund", request_hash, outcome
        )
        return outcome

    return points.run(uow, check, apply)


def get_payment(payment_id: int, member_id: int, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return idempotency.jsonable(_get(uow.conn, payment_id, member_id))


def list_payments(
    member_id: int, uow: UnitOfWork, order_id: int | None, limit: int, offset: int
) -> dict[str, Any]:
    """The member's payments, newest first; only `order_id`'s (at most one) when given.
    Another member's payment is not listed."""
    query = sa.select(payments).where(payments.c.member_id == member_id)
    if order_id is not None:
        query = query.where(payments.c.order_id == order_id)
    query = query.order_by(payments.c.id.desc()).limit(limit).offset(offset)
    with uow:
        rows = uow.conn.execute(query).mappings().all()
    items = [idempotency.jsonable(dict(row)) for row in rows]
    return {"items": items, "limit": limit, "offset": offset}


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
