"""Members announce their changes (`shop.members`): every member row keeps a `version`, one
more with each change, which is the sequence of the member's events (the legacy DB's members
gain the same column in the monolith's migration 0008, so the two stay column for column);
and the member DB gets an outbox, where the service's events commit from dual write on (in the
shared-DB stage they go to the legacy DB's outbox with the rest of the write).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-15
"""

import sqlalchemy as sa
from alembic import op

from libs.events.outbox import outbox_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not batch mode: rebuilding the table would drop any trigger on it.
    op.add_column(
        "members", sa.Column("version", sa.BigInteger, nullable=False, server_default="0")
    )
    # The outbox shape as libs/events defines it at this revision; a later change to it comes
    # with a migration of its own.
    outbox_table(sa.MetaData()).create(op.get_bind())


def downgrade() -> None:
    op.drop_table("event_outbox")
    op.drop_column("members", "version")
