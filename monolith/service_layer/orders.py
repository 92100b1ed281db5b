"""Order handlers. Stock is taken with a conditional UPDATE (`stock >= quantity`) inside the
order's transaction, so concurrent orders can never oversell and a failed line undoes all."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from libs.errors import Conflict, NotFound
from monolith.adapters.tables import order_lines, orders, products
from monolith.domain import orders as domain
from monolith.service_layer import commands, events
from monolith.service_layer.unit_of_work import UnitOfWork


def place_order(cmd: commands.PlaceOrder, uow: UnitOfWork) -> dict[str, Any]:
    domain.check_lines(cmd.lines)
    with uow:
        priced = [_take_stock(uow.conn, line) for line in cmd.lines]
        now = datetime.now(UTC)
        inserted = uow.conn.execute(
            orders.insert().values(
                member_id=cmd.member_id,
                status=domain.PLACED,
                total=domain.total(priced),
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key
        assert inserted is not None  # a single-row insert always has its key
        order_id = inserted[0]
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
        uow.commit()
    return order


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
            .where(orders.c.member_id == member_id)
            .order_by(orders.c.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        items = [load(uow.conn, order_id, member_id) for order_id in ids]
    return {"items": items, "limit": limit, "offset": offset}


def load(conn: sa.Connection, order_id: int, member_id: int, lock: bool = False) -> dict[str, Any]:
    """An order of this member; someone else's order is reported as missing, not forbidden,
    so ids cannot be probed."""
    query = sa.select(orders).where(orders.c.id == order_id, orders.c.member_id == member_id)
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
    now = datetime.now(UTC)
    for line in order["lines"]:
        conn.execute(
            products.update()
            .where(products.c.id == line["product_id"])
            .values(stock=products.c.stock + line["quantity"], updated_at=now)
        )


def _take_stock(conn: sa.Connection, line: domain.LineRequest) -> domain.PricedLine:
    taken = conn.execute(
        products.update()
        .where(products.c.id == line.product_id, products.c.stock >= line.quantity)
        .values(stock=products.c.stock - line.quantity, updated_at=datetime.now(UTC))
        .returning(products.c.name, products.c.price)
    ).first()
    if taken is not None:
        return domain.PricedLine(line.product_id, taken.name, taken.price, line.quantity)
    exists = conn.scalar(sa.select(products.c.stock).where(products.c.id == line.product_id))
    if exists is None:
        raise NotFound("PRODUCT_NOT_FOUND", f"Product {line.product_id} does not exist.")
    raise Conflict("OUT_OF_STOCK", f"Product {line.product_id} has only {exists} left.")
