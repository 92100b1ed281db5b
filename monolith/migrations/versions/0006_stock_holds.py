"""Stock holds: the catalogue's reservation of stock for an order, keyed by the order's id, so
an order placed elsewhere (the order service) takes stock by one idempotent call and gives it
back by another. Every existing order gets the hold it implies: a placed or paid order holds
its lines, a cancelled or refunded one has released them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
HELD = {"PLACED": "held", "PAID": "held", "CANCELLED": "released", "REFUNDED": "released"}
BATCH = 500

# The two legacy tables as this revision reads them.
orders = sa.table(
    "orders",
    sa.column("id", ID),
    sa.column("status", sa.String(20)),
    sa.column("created_at", TS),
    sa.column("updated_at", TS),
)
order_lines = sa.table(
    "order_lines",
    sa.column("id", ID),
    sa.column("order_id", ID),
    sa.column("product_id", ID),
    sa.column("name", sa.String(120)),
    sa.column("unit_price", sa.BigInteger),
    sa.column("quantity", sa.Integer),
)


def upgrade() -> None:
    holds = op.create_table(
        "stock_holds",
        sa.Column("order_id", ID, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    assert holds is not None  # create_table returns the table it made
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(orders).where(orders.c.status.in_(HELD)).order_by(orders.c.id)
    ).all()
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        lines = _lines(bind, [row.id for row in batch])
        bind.execute(
            holds.insert(),
            [
                {
                    "order_id": row.id,
                    "status": HELD[row.status],
                    "lines": lines[row.id],
                    "created_at": row.created_at,
                    "updated_at": row.updated_at,
                }
                for row in batch
            ],
        )


def downgrade() -> None:
    op.drop_table("stock_holds")


def _lines(bind: sa.Connection, order_ids: list[int]) -> dict[int, list[dict]]:
    found: dict[int, list[dict]] = defaultdict(list)
    query = (
        sa.select(order_lines)
        .where(order_lines.c.order_id.in_(order_ids))
        .order_by(order_lines.c.order_id, order_lines.c.id)
    )
    for line in bind.execute(query):
        found[line.order_id].append(
            {
                "product_id": line.product_id,
                "name": line.name,
                "unit_price": line.unit_price,
                "quantity": line.quantity,
            }
        )
    return found
