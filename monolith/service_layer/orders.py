"""Order handlers. An order's stock is a hold at the catalogue keyed by the order's id
(service_layer/catalog.py), taken in the order's own transaction, so a refused line undoes the
order too; cancelling or refunding releases it, once, however many times it is asked for (the
order's OrderCancelled / OrderRefunded event releases it again, and changes nothing).

The order service's PENDING orders (domain/orders.py) are not this API's: they are reported
missing, like another member's orders.

A placement with an Idempotency-Key keeps its answer under the key in the order's own
transaction: a retry (the same key and lines) answers it again instead of placing a second
order; the same key with other lines is refused (IDEMPOTENCY_KEY_REUSED)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from libs.errors import NotFound
from monolith.adapters.tables import order_idempotency_keys, order_lines, orders
from monolith.domain import orders as domain
from monolith.service_layer import catalog, commands, events, idempotency
from monolith.service_layer.idempotency import Outcome
from monolith.service_layer.unit_of_work import UnitOfWork


def place_order(cmd: commands.PlaceOrder, uow: UnitOfWork) -> Outcome:
    domain.check_lines(cmd.lines)
    try:
        return _place_order(cmd, uow)
    except sa.exc.IntegrityError:
        # A concurrent retry with the same key committed first (its key row won): answer its
        # result. Without a key the error is not ours to explain.
        earlier = _earlier(cmd, uow)
        if earlier is None:
            raise
        return earlier


def _earlier(cmd: commands.PlaceOrder, uow: UnitOfWork) -> Outcome | None:
    with uow:
        return _replay(cmd, uow)


def _replay(cmd: commands.PlaceOrder, uow: UnitOfWork) -> Outcome | None:
    """The first answer to this placement's Idempotency-Key, on the unit of work's open
    connection (None: no key, or not used yet)."""
    return idempotency.replay(
        uow.conn,
        cmd.member_id,
        cmd.idempotency_key,
        commands.PLACE_ORDER,
        cmd.request_hash(),
        order_idempotency_keys,
    )


def _place_order(cmd: commands.PlaceOrder, uow: UnitOfWork) -> Outcome:
    with uow:
        earlier = _replay(cmd, uow)
        if earlier is not None:
            return earlier
        now = datetime.now(UTC)
        inserted = uow.conn.execute(
            orders.insert().values(
                member_id=cmd.member_id,
                status=domain.PLACED,
                total=0,  # known once the hold has priced the lines, below
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key
        assert inserted is not None  # a single-row insert always has its key
        order_id = inserted[0]
        priced = catalog.hold(uow.conn, order_id, cmd.lines).lines
        uow.conn.execute(
            orders.update().where(orders.c.id == order_id).values(total=domain.total(priced))
        )
        uow.conn.execute(
            order_lines.insert(),
            [
                {
                    "order_id": order_id,
                    "product_id": p.product_id,
                    "name": p.name,
                    "unit_price": p.unit_price,
                    "quantity": p.quantity,
                }
                for p in priced
            ],
        )
        order = load(uow.conn, order_id, cmd.member_id)
        events.order_placed(uow.conn, order)
        outcome = Outcome(201, idempotency.jsonable(order))
        idempotency.remember(
            uow.conn,
            cmd.member_id,
            cmd.idempotency_key,
            commands.PLACE_ORDER,
            cmd.request_hash(),
            outcome,
            order_idempotency_keys,
        )
        uow.commit()
    return outcome


def cancel_order(cmd: commands.CancelOrder, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        order = load(uow.conn, cmd.order_id, cmd.member_id, lock=True)
        domain.ensure_cancellable(order["status"])
        set_status(uow.conn, order, domain.CANCELLED)
        restore_stock(uow.conn, order)
        order = load(uow.conn, cmd.order_id, cmd.member_id)
        uow.commit()
    return order


def get_order(order_id: int, member_id: int, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        return load(uow.conn, order_id, member_id)


def list_orders(member_id: int, uow: UnitOfWork, limit: int, offset: int) -> dict[str, Any]:
    with uow:
        ids = uow.conn.scalars(
            sa.select(orders.c.id)
            .where(orders.c.member_id == member_id, orders.c.status.not_in(domain.HIDDEN))
            .order_by(orders.c.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        items = [load(uow.conn, order_id, member_id) for order_id in ids]
    return {"items": items, "limit": limit, "offset": offset}


def load(conn: sa.Connection, order_id: int, member_id: int, lock: bool = False) -> dict[str, Any]:
    """An order of this member; someone else's order is reported as missing, not forbidden,
    so ids cannot be probed. So is a PENDING one: it is not placed yet."""
    query = sa.select(orders).where(
        orders.c.id == order_id,
        orders.c.member_id == member_id,
        orders.c.status.not_in(domain.HIDDEN),
    )
    row = conn.execute(query.with_for_update() if lock else query).mappings().first()
    if row is None:
        raise NotFound("ORDER_NOT_FOUND", f"Order {order_id} does not exist.")
    lines = (
        conn.execute(
            sa.select(
                order_lines.c.product_id,
                order_lines.c.name,
                order_lines.c.unit_price,
                order_lines.c.quantity,
            )
            .where(order_lines.c.order_id == order_id)
            .order_by(order_lines.c.id)
        )
        .mappings()
        .all()
    )
    return {
        **dict(row),
        "lines": [{**line, "amount": line["unit_price"] * line["quantity"]} for line in lines],
    }


def set_status(
    conn: sa.Connection, order: dict[str, Any], status: str, payment_id: int | None = None
) -> None:
    """Every status change is announced (`shop.orders`) in the change's own transaction."""
    conn.execute(
        orders.update()
        .where(orders.c.id == order["id"])
        .values(status=status, updated_at=datetime.now(UTC))
    )
    events.order_status_changed(conn, order, status, payment_id)


def restore_stock(conn: sa.Connection, order: dict[str, Any]) -> None:
    """Releases the order's stock hold: at most once, whoever asks first (this cancel or
    refund, or the catalogue's consumer of the event it announces)."""
    catalog.release(conn, order["id"])
