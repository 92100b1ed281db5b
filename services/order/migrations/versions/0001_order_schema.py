"""The order DB: orders and their lines, column for column as in the legacy DB (an order line's
product without its foreign key: products stay in the monolith's catalogue), the outbox of
the order events, the payment events consumer's inbox and parked events, and the sync job's
cursor.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from libs.dualwrite import install_sync_cursor
from libs.events.inbox import inbox_tables
from libs.events.outbox import outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("member_id", ID, nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False, index=True),
    )
    op.create_table(
        "order_lines",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", ID, sa.ForeignKey("orders.id"), nullable=False, index=True),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("unit_price", sa.BigInteger, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
    )
    # The outbox and inbox shapes as libs/events defines them at this revision; a later change
    # to them comes with a migration of its own.
    metadata = sa.MetaData()
    outbox_table(metadata).create(op.get_bind())
    tables = inbox_tables(metadata)
    tables.inbox.create(op.get_bind())
    tables.parked.create(op.get_bind())
    install_sync_cursor(op.get_bind())


def downgrade() -> None:
    op.drop_table("dualwrite_sync_cursor")
    op.drop_table("parked_events")
    op.drop_table("event_inbox")
    op.drop_table("event_outbox")
    op.drop_table("order_lines")
    op.drop_table("orders")
