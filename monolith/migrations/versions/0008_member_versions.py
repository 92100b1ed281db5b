"""Members announce their changes (`shop.members`): every member row keeps a `version`, one
more with each change, which is the sequence of the member's events. Existing members start at
0, as if nothing had been announced yet: their next change is event 1. The member DB's members
gain the same column (member migration 0003), so the two stay column for column and the batch
sync, dual write and reconcile carry it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-15
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not batch mode: rebuilding the table would drop the change-capture (and, after single
    # write, the freeze) triggers on it.
    op.add_column(
        "members", sa.Column("version", sa.BigInteger, nullable=False, server_default="0")
    )


def downgrade() -> None:
    op.drop_column("members", "version")
