"""Order placement takes an Idempotency-Key, as payments do: a retried placement (the same key
and body) answers the first result instead of placing a second order. The keys live beside
the orders, with change capture, so they move to the order service with them (the order
DB's migration 0002 makes the same table there): a retry finds its first answer on
whichever side of the split it lands.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from libs.dualwrite import install_change_capture, uninstall_change_capture
from libs.dualwrite.capture import CapturedTable
from libs.dualwrite.freeze import uninstall_freeze_triggers

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KEYS = (CapturedTable("order_idempotency_keys", ("member_id", "key")),)


def upgrade() -> None:
    op.create_table(
        "order_idempotency_keys",
        sa.Column("member_id", ID, primary_key=True),
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("operation", sa.String(40), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    install_change_capture(op.get_bind(), KEYS)


def downgrade() -> None:
    uninstall_freeze_triggers(op.get_bind(), KEYS)
    uninstall_change_capture(op.get_bind(), KEYS)
    op.drop_table("order_idempotency_keys")
