"""Payment handlers. The order row is locked first, then the idempotency key is looked up, so
two concurrent retries of one payment queue behind each other and the second replays the
first's result instead of failing or charging again.

Points move through `points` (service_layer/points.py): in this transaction on the legacy
member tables, or, once the member service owns them, as an outbox row in this transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from libs.errors import NotFound
from monolith.adapters.tables import payments
from monolith.domain import orders as order_rules
from monolith.domain import payments as rules
from monolith.service_layer import commands, idempotency
from monolith.service_layer.idempotency import Outcome
from monolith.service_layer.orders import load as load_order
from monolith.service_layer.orders import restore_stock, set_status
from monolith.service_layer.points import Points
from monolith.service_layer.unit_of_work import UnitOfWork


def pay(cmd: commands.Pay, uow: UnitOfWork, points: Points) -> Outcome:
    request_hash = idempotency.fingerprint("pay", order_id=cmd.order_id, method=cmd.method)
    with uow:
        order = load_order(uow.conn, cmd.order_id, cmd.member_id, lock=True)
        earlier = idempotency.replay(
            uow.conn, cmd.member_id, cmd.idempotency_key, "pay", request_hash
        )
        if earlier:
            return earlier
        order_rules.ensure_payable(order["status"])
        spent = rules.points_spent(cmd.method, order["total"])
        if spent:
            rules.ensure_can_spend(points.balance(uow.conn, cmd.member_id), spent)
        payment_id = _insert_payment(uow.conn, cmd, order["total"], spent)
        earned = rules.points_earned(cmd.method, order["total"])
        if spent or earned:
            points.change(uow.conn, cmd.member_id, earned - spent, "pay", payment_id)
        set_status(uow.conn, cmd.order_id, order_rules.PAID)
        outcome = Outcome(201, idempotency.jsonable(_get(uow.conn, payment_id, cmd.member_id)))
        idempotency.remember(
            uow.conn, cmd.member_id, cmd.idempotency_key, "pay", request_hash, outcome
        )
        uow.commit()
    return outcome


def refund(cmd: commands.Refund, uow: UnitOfWork, points: Points) -> Outcome:
    request_hash = idempotency.fingerprint("refund", payment_id=cmd.payment_id)
    with uow:
        payment = _get(uow.conn, cmd.payment_id, cmd.member_id, lock=True)
        earlier = idempotency.replay(
            uow.conn, cmd.member_id, cmd.idempotency_key, "refund", request_hash
        )
        if earlier:
            return earlier
        rules.ensure_refundable(payment["status"])
        order = load_order(uow.conn, payment["order_id"], cmd.member_id, lock=True)
        reverse = payment["points_spent"] - payment["points_earned"]
        if reverse < 0:
            rules.ensure_can_take_back(points.balance(uow.conn, cmd.member_id), -reverse)
        if reverse:
            points.change(uow.conn, cmd.member_id, reverse, "refund", cmd.payment_id)
        uow.conn.execute(
            payments.update()
            .where(payments.c.id == cmd.payment_id)
            .values(status=rules.REFUNDED, updated_at=datetime.now(UTC))
        )
        set_status(uow.conn, order["id"], order_rules.REFUNDED)
        restore_stock(uow.conn, order)
        outcome = Outcome(200, idempotency.jsonable(_get(uow.conn, cmd.payment_id, cmd.member_id)))
        idempotency.remember(
            uow.conn, cmd.member_id, cmd.idempotency_key, "refund", request_hash, outcome
        )
        uow.commit()
    return outcome


def get_payment(payment_id: int, member_id: int, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return idempotency.jsonable(_get(uow.conn, payment_id, member_id))


def _insert_payment(conn: sa.Connection, cmd: commands.Pay, amount: int, spent: int) -> int:
    now = datetime.now(UTC)
    return conn.execute(
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
    ).inserted_primary_key[0]


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
