"""Payment handlers of the payment service. The order a payment is for is the order service's:
read over gRPC (GetOrder, its deadline what is left of the request's budget), never from its
DB. The order becomes PAID, and REFUNDED, when the order service consumes this service's
PaymentCompleted and PaymentRefunded; until then the payments table's unique order id is what
stops a second payment of one order.

A points payment's debit, and a refunded card payment's take-back, are the member service's
decisions: the callers' saga of services/member/debits.py, with the attempts in this
service's `point_spends` (moved with the payments), so the payment that uses a debit and the
debit commit together. Every payment and refund writes its event in its own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import sqlalchemy as sa

from libs import idempotency
from libs.dualwrite import WriteTransaction
from libs.errors import Conflict, NotFound, Unavailable
from libs.events.outbox import Outbox
from libs.extraction import ExtractionData, Reads
from libs.idempotency import DoorKeys, Outcome
from services.member.debits import (
    SPEND,
    TAKE_BACK,
    Build,
    Checked,
    Debit,
    DebitAsk,
    MemberDebits,
    call_deadline,
)
from services.order.client import BlockingOrderClient
from services.order.domain.orders import ensure_payable
from services.payment import events
from services.payment.adapters.tables import event_outbox
from services.payment.domain import payments as rules
from services.payment.service_layer import commands

outbox = Outbox(event_outbox)


@dataclass(frozen=True)
class Spends:
    """`point_spends` through the data door."""

    data: ExtractionData

    def write(self, tx: WriteTransaction, build: Build) -> sa.CursorResult:
        return tx.write("point_spends", build)

    def write_alone(self, build: Build) -> sa.CursorResult:
        with self.data.writing() as tx:
            return tx.write("point_spends", build)

    def read(self, build: Build):
        with self.data.reading() as tx:
            return tx.read("point_spends", build).all()


@dataclass
class Payments:
    data: ExtractionData
    orders: BlockingOrderClient
    debits: MemberDebits[WriteTransaction]

    def pay(self, cmd: commands.Pay) -> Outcome:
        request_hash = idempotency.fingerprint("pay", order_id=cmd.order_id, method=cmd.method)
        with self.data.reading() as tx:  # a replay needs no order service
            earlier = idempotency.replay(
                DoorKeys(tx, "idempotency_keys"),
                cmd.member_id,
                cmd.idempotency_key,
                "pay",
                request_hash,
            )
        if earlier:
            return earlier
        # Read before any transaction: a write transaction held across a network call would
        # queue every writer of its DB (the legacy DB, in the shared-DB stage) behind it.
        order = self.order(cmd.order_id, cmd.member_id)
        ensure_payable(order["status"])

        def check(tx: WriteTransaction) -> Checked:
            earlier = idempotency.replay(
                DoorKeys(tx, "idempotency_keys"),
                cmd.member_id,
                cmd.idempotency_key,
                "pay",
                request_hash,
            )
            if earlier:  # an identical request committed meanwhile
                return Checked(earlier, {})
            if _payment_of(tx, cmd.order_id) is not None:
                raise Conflict("ORDER_ALREADY_PAID", "The order is already paid.")
            spent = rules.points_spent(cmd.method, order["total"])
            ask = DebitAsk(cmd.member_id, spent, SPEND, order["id"]) if spent else None
            return Checked(None, order, ask)

        def apply(tx: WriteTransaction, order: dict[str, Any], debit: Debit | None) -> Outcome:
            now = datetime.now(UTC)
            values = {
                "order_id": cmd.order_id,
                "member_id": cmd.member_id,
                "amount": order["total"],
                "method": cmd.method,
                "status": rules.CAPTURED,
                "points_earned": rules.points_earned(cmd.method, order["total"]),
                "points_spent": rules.points_spent(cmd.method, order["total"]),
                "created_at": now,
                "updated_at": now,
            }
            try:
                inserted = tx.write("payments", lambda t: t.insert().values(**values))
            except sa.exc.IntegrityError as exc:  # a payment of this order committed meanwhile
                raise Conflict("ORDER_ALREADY_PAID", "The order is already paid.") from exc
            assert inserted.inserted_primary_key is not None
            payment_id = inserted.inserted_primary_key[0]
            self.debits.use(tx, debit, payment_id)
            payment = _get(tx, payment_id, cmd.member_id)
            event = events.payment_completed(payment, debit.key if debit else None)
            self.data.announce(tx, outbox, events.TOPIC, event)
            outcome = Outcome(201, idempotency.jsonable(payment))
            keys = DoorKeys(tx, "idempotency_keys")
            idempotency.remember(
                keys, cmd.member_id, cmd.idempotency_key, "pay", request_hash, outcome
            )
            return outcome

        return self.debits.run(self.data.writing, check, apply)

    def refund(self, cmd: commands.Refund) -> Outcome:
        request_hash = idempotency.fingerprint("refund", payment_id=cmd.payment_id)

        def check(tx: WriteTransaction) -> Checked:
            payment = _get(tx, cmd.payment_id, cmd.member_id, lock=True)
            earlier = idempotency.replay(
                DoorKeys(tx, "idempotency_keys"),
                cmd.member_id,
                cmd.idempotency_key,
                "refund",
                request_hash,
            )
            if earlier:
                return Checked(earlier, payment)
            rules.ensure_refundable(payment["status"])
            earned = payment["points_earned"]
            take_back = DebitAsk(
                cmd.member_id, earned, TAKE_BACK, payment["order_id"], payment["id"]
            )
            return Checked(None, payment, take_back if earned else None)

        def apply(tx: WriteTransaction, payment: dict[str, Any], debit: Debit | None) -> Outcome:
            self.debits.use(tx, debit, cmd.payment_id)
            now = datetime.now(UTC)
            tx.write(
                "payments",
                lambda t: (
                    t.update()
                    .where(t.c.id == cmd.payment_id)
                    .values(status=rules.REFUNDED, updated_at=now)
                ),
            )
            refunded = _get(tx, cmd.payment_id, cmd.member_id)
            event = events.payment_refunded(refunded, debit.key if debit else None)
            self.data.announce(tx, outbox, events.TOPIC, event)
            outcome = Outcome(200, idempotency.jsonable(refunded))
            idempotency.remember(
                DoorKeys(tx, "idempotency_keys"),
                cmd.member_id,
                cmd.idempotency_key,
                "refund",
                request_hash,
                outcome,
            )
            return outcome

        return self.debits.run(self.data.writing, check, apply)

    def get(self, payment_id: int, member_id: int) -> dict[str, Any]:
        with self.data.reading() as tx:
            return idempotency.jsonable(_get(tx, payment_id, member_id))

    def find(
        self,
        member_id: int,
        *,
        order_id: int | None = None,
        order_ids: Sequence[int] | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        """The member's payments, newest first; only those of `order_id`, or of `order_ids`,
        when given (an order has at most one). Another member's payment is not listed."""
        with self.data.reading() as tx:
            rows = _listed(tx, member_id, order_id, order_ids, limit, offset)
        return {"items": [idempotency.jsonable(r) for r in rows], "limit": limit, "offset": offset}

    def order(self, order_id: int, member_id: int) -> dict[str, Any]:
        """The order from its owner, over gRPC, within what is left of this request's time."""
        try:
            order = self.orders.get_order(
                order_id, member_id, timeout=call_deadline(self.orders.timeout)
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("ORDER_NOT_FOUND", f"Order {order_id} does not exist.") from exc
            raise Unavailable(
                "ORDER_SERVICE_UNAVAILABLE",
                f"The order service did not answer the order lookup: {exc.code().name}.",
            ) from exc
        fields = ("id", "member_id", "status", "total")
        return {name: getattr(order, name) for name in fields}


def _payment_of(tx: Reads, order_id: int) -> int | None:
    return tx.read("payments", lambda t: sa.select(t.c.id).where(t.c.order_id == order_id)).scalar()


def _listed(
    tx: Reads,
    member_id: int,
    order_id: int | None,
    order_ids: Sequence[int] | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    def select(t: sa.Table) -> sa.Select:
        query = sa.select(t).where(t.c.member_id == member_id)
        if order_id is not None:
            query = query.where(t.c.order_id == order_id)
        if order_ids is not None:
            query = query.where(t.c.order_id.in_(order_ids))
        return query.order_by(t.c.id.desc()).limit(limit).offset(offset)

    return [dict(row) for row in tx.read("payments", select).mappings()]


def _get(tx: Reads, payment_id: int, member_id: int, lock: bool = False) -> dict[str, Any]:
    def select(t: sa.Table) -> sa.Select:
        query = sa.select(t).where(t.c.id == payment_id, t.c.member_id == member_id)
        return query.with_for_update() if lock else query

    row = tx.read("payments", select).mappings().first()
    if row is None:
        raise NotFound("PAYMENT_NOT_FOUND", f"Payment {payment_id} does not exist.")
    return dict(row)
