"""The legacy shop's schema: members, points, products, orders, payments, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("phone", sa.String(20)),
        sa.Column("points", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False, index=True),
        sa.CheckConstraint("points >= 0", name="members_points_not_negative"),
    )
    op.create_table(
        "point_ledger",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("member_id", ID, sa.ForeignKey("members.id"), nullable=False, index=True),
        sa.Column("delta", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("payment_id", ID),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "products",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("sku", sa.String(40), nullable=False, unique=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("stock >= 0", name="products_stock_not_negative"),
        sa.CheckConstraint("price > 0", name="products_price_positive"),
    )
    op.create_table(
        "orders",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("member_id", ID, sa.ForeignKey("members.id"), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False, index=True),
    )
    op.create_table(
        "order_lines",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", ID, sa.ForeignKey("orders.id"), nullable=False, index=True),
        sa.Column("product_id", ID, sa.ForeignKey("products.id"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("unit_price", sa.BigInteger, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
    )
    op.create_table(
        "payments",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", ID, sa.ForeignKey("orders.id"), nullable=False, unique=True),
        sa.Column("member_id", ID, sa.ForeignKey("members.id"), nullable=False, index=True),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("points_earned", sa.BigInteger, nullable=False),
        sa.Column("points_spent", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False, index=True),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("member_id", ID, primary_key=True),
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("operation", sa.String(40), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "payments",
        "order_lines",
        "orders",
        "products",
        "point_ledger",
        "members",
    ):
        op.drop_table(table)
