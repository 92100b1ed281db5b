"""Product reads."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from libs.errors import NotFound
from monolith.adapters.tables import products
from monolith.service_layer.unit_of_work import UnitOfWork

COLUMNS = (products.c.id, products.c.sku, products.c.name, products.c.price, products.c.stock)


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
