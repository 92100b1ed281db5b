"""Signup takes an Idempotency-Key: a retried signup (the same key and body) answers the first
result instead of 409 EMAIL_TAKEN. The keys (member_id 0: the caller is no member yet) live
beside the members, with change capture, so they move to the member service with them (the
member DB's migration 0004 makes the same table there).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from libs.dualwrite import install_change_capture, uninstall_change_capture
from libs.dualwrite.capture import CapturedTable
from libs.dualwrite.freeze import uninstall_freeze_triggers

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KEYS = (CapturedTable("signup_idempotency_keys", ("member_id", "key")),)


def upgrade() -> None:
    op.create_table(
        "signup_idempotency_keys",
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
    op.drop_table("signup_idempotency_keys")
