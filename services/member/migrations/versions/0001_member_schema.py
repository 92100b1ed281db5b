"""The member DB: members and their point ledger, column for column as in the legacy DB, and
the sync job's cursor (the batch sync of the shared-DB stage writes it here).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from libs.dualwrite import install_sync_cursor

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
    install_sync_cursor(op.get_bind())


def downgrade() -> None:
    op.drop_table("dualwrite_sync_cursor")
    op.drop_table("point_ledger")
    op.drop_table("members")
