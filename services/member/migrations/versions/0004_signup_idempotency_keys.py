"""The Idempotency-Keys of signups, column for column as in the legacy DB (monolith migration
0010): they move with the members, so a retried signup finds its first answer in whichever
DB holds the members.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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


def downgrade() -> None:
    op.drop_table("signup_idempotency_keys")
