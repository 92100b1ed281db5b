"""The catalogue, which stays in the monolith: product reads, and the stock holds through which
every order takes and gives back stock, whoever owns the order (domain/holds.py).

`hold` and `release` run in the caller's transaction: the monolith's own order placement,
cancel and refund, the internal stock-hold API the order service calls, and the consumer of
`shop.orders` (group `monolith.catalogue`) that releases the holds of cancelled and refunded
orders. Stock is taken with a conditional UPDATE (`stock >= quantity`), so concurrent holds can
never oversell, and a refused line raises so the caller's rollback undoes every line before it.

Concurrent holds of one order queue on its key: the hold's row is claimed (inserted, or found
taken) before any stock moves. PostgreSQL makes a second insert of the key wait for the first
transaction and then report the conflict; SQLite writers queue at BEGIN IMMEDIATE. Product
rows are locked in product order, so two holds of the same products cannot deadlock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from libs.errors import Conflict, NotFound
from libs.events.envelope import Event
from monolith.adapters.tables import products, stock_holds
from monolith.domain import holds as rules
from monolith.domain.orders import LineRequest, PricedLine, check_lines, total
from monolith.service_layer import commands
from monolith.service_layer.unit_of_work import UnitOfWork

COLUMNS = (products.c.id, products.c.sku, products.c.name, products.c.price, products.c.stock)
GROUP = "monolith.catalogue"
# The order events that give an order's stock back (topic shop.orders).
RELEASING = ("OrderCancelled", "OrderRefunded")


@dataclass(frozen=True)
class Held:
    order_id: int
    lines: list[PricedLine]
    applied: bool  # False: the order held these lines already, nothing was taken now


def list_products(uow: UnitOfWork, limit: int, offset: int) -> dict[str, Any]:
    with uow:
        items = (
            uow.conn.execute(
                sa.select(*COLUMNS).order_by(products.c.id).limit(limit).offset(offset)
            )
            .mappings()
            .all()
        )
        count = uow.conn.scalar(sa.select(sa.func.count()).select_from(products))
    return {"items": [dict(i) for i in items], "total": count, "limit": limit, "offset": offset}


def get_product(product_id: int, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        row = (
            uow.conn.execute(sa.select(*COLUMNS).where(products.c.id == product_id))
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound("PRODUCT_NOT_FOUND", f"Product {product_id} does not exist.")
    return dict(row)


def hold(conn: sa.Connection, order_id: int, lines: list[LineRequest]) -> Held:
    """Takes every line's stock for the order and records the hold; the same lines asked for
    again answer the stored hold and take nothing. Raises Conflict (HOLD_RELEASED,
    HOLD_MISMATCH, OUT_OF_STOCK) or NotFound (PRODUCT_NOT_FOUND): the caller rolls back."""
    check_lines(lines)
    now = datetime.now(UTC)
    if not _claim(conn, order_id, rules.HELD, now):
        found = _locked(conn, order_id)
        rules.ensure_repeat(order_id, found["status"], found["lines"], lines)
        return Held(order_id, [PricedLine(**line) for line in found["lines"]], applied=False)
    taken = {
        line.product_id: _take_stock(conn, line, now)
        for line in sorted(lines, key=lambda line: line.product_id)
    }
    priced = [taken[line.product_id] for line in lines]
    conn.execute(
        stock_holds.update()
        .where(stock_holds.c.order_id == order_id)
        .values(lines=[_stored(line) for line in priced])
    )
    return Held(order_id, priced, applied=True)


def release(conn: sa.Connection, order_id: int) -> bool:
    """Gives a held hold's stock back (True). A released one changes nothing (False); an order
    with no hold gets a released tombstone (False), so a hold arriving later is refused."""
    now = datetime.now(UTC)
    if _claim(conn, order_id, rules.RELEASED, now):
        return False
    found = _locked(conn, order_id)
    if found["status"] == rules.RELEASED:
        return False
    for line in sorted(found["lines"], key=lambda line: line["product_id"]):
        conn.execute(
            products.update()
            .where(products.c.id == line["product_id"])
            .values(stock=products.c.stock + line["quantity"], updated_at=now)
        )
    conn.execute(
        stock_holds.update()
        .where(stock_holds.c.order_id == order_id)
        .values(status=rules.RELEASED, updated_at=now)
    )
    return True


def handle_order_event(conn: sa.Connection, event: Event) -> None:
    """The catalogue's consumer of `shop.orders`: a cancelled or refunded order's hold is
    released, in the transaction that records the event in the inbox. Every other event is
    ignored. Raises on an event without a valid order_id: the runner parks it."""
    if event.type in RELEASING:
        release(conn, event.count("order_id"))


def hold_stock(cmd: commands.HoldStock, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        held = hold(uow.conn, cmd.order_id, cmd.lines)
        uow.commit()
    return {
        "order_id": held.order_id,
        "status": rules.HELD,
        **_priced_view(held.lines),
        "applied": held.applied,
    }


def release_stock(cmd: commands.ReleaseStock, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        restored = release(uow.conn, cmd.order_id)
        uow.commit()
    return {"order_id": cmd.order_id, "status": rules.RELEASED, "restored": restored}


def get_hold(order_id: int, uow: UnitOfWork) -> dict[str, Any]:
    with uow:
        row = (
            uow.conn.execute(sa.select(stock_holds).where(stock_holds.c.order_id == order_id))
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound("HOLD_NOT_FOUND", f"Order {order_id} has no stock hold.")
    lines = [PricedLine(**line) for line in row["lines"]]
    return {
        "order_id": row["order_id"],
        "status": row["status"],
        **_priced_view(lines),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _claim(conn: sa.Connection, order_id: int, status: str, now: datetime) -> bool:
    """Inserts the order's hold row unless it has one; True when this call inserted it.

    ON CONFLICT DO NOTHING rather than catching IntegrityError: on PostgreSQL a failed INSERT
    aborts the caller's transaction, and a repeated hold must still answer."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(stock_holds)
        .values(order_id=order_id, status=status, lines=[], created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(stock_holds.c.order_id)
    )
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT.
    return conn.execute(statement).first() is not None


def _locked(conn: sa.Connection, order_id: int) -> sa.RowMapping:
    query = sa.select(stock_holds).where(stock_holds.c.order_id == order_id).with_for_update()
    row = conn.execute(query).mappings().first()
    assert row is not None  # claimed by someone, and holds are never deleted
    return row


def _take_stock(conn: sa.Connection, line: LineRequest, now: datetime) -> PricedLine:
    taken = conn.execute(
        products.update()
        .where(products.c.id == line.product_id, products.c.stock >= line.quantity)
        .values(stock=products.c.stock - line.quantity, updated_at=now)
        .returning(products.c.name, products.c.price)
    ).first()
    if taken is not None:
        return PricedLine(line.product_id, taken.name, taken.price, line.quantity)
    left = conn.scalar(sa.select(products.c.stock).where(products.c.id == line.product_id))
    if left is None:
        raise NotFound("PRODUCT_NOT_FOUND", f"Product {line.product_id} does not exist.")
    raise Conflict("OUT_OF_STOCK", f"Product {line.product_id} has only {left} left.")


def _stored(line: PricedLine) -> dict[str, Any]:
    return {
        "product_id": line.product_id,
        "name": line.name,
        "unit_price": line.unit_price,
        "quantity": line.quantity,
    }


def _priced_view(lines: list[PricedLine]) -> dict[str, Any]:
    return {
        "lines": [_stored(line) | {"amount": line.amount} for line in lines],
        "total": total(lines),
    }
