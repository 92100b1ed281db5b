"""The payment DB: payments, the idempotency keys of the payment requests and the attempts of
the points debits, column for column as in the legacy DB (a payment's order without its
foreign key: orders are the order service's), the outbox of the payment events, and the sync
job's cursor.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from libs.dualwrite import install_sync_cursor
from libs.events.outbox import outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", ID, nullable=False, unique=True),
        sa.Column("member_id", ID, nullable=False, index=True),
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
    op.create_table(
        "point_spends",
        sa.Column("key", sa.String(36), primary_key=True),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("payment_id", ID),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(200)),
        sa.Index("ix_point_spends_status", "status"),
    )
    # The outbox shape as libs/events defines it at this revision.
    outbox_table(sa.MetaData()).create(op.get_bind())
    install_sync_cursor(op.get_bind())


def downgrade() -> None:
    op.drop_table("dualwrite_sync_cursor")
    op.drop_table("event_outbox")
    op.drop_table("point_spends")
    op.drop_table("idempotency_keys")
    op.drop_table("payments")
