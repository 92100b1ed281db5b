"""Points owned by the member service: the ledger keeps the caller's key of each debit (and of
its cancel), which makes SpendPoints and CancelSpend idempotent; the payment events consumer
keeps the events it could not apply. The legacy DB's point_ledger gains the same column in
the monolith's migration 0004, so the two stay column for column.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from libs.events.inbox import inbox_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("point_ledger", sa.Column("spend_key", sa.String(64)))
    op.create_index("ix_point_ledger_spend_key", "point_ledger", ["spend_key"], unique=True)
    # The inbox shapes as libs/events defines them at this revision; a later change to them
    # comes with a migration of its own.
    tables = inbox_tables(sa.MetaData())
    tables.inbox.create(op.get_bind())
    tables.parked.create(op.get_bind())


def downgrade() -> None:
    op.drop_table("parked_events")
    op.drop_table("event_inbox")
    op.drop_index("ix_point_ledger_spend_key", table_name="point_ledger")
    # Not batch mode: rebuilding the table would drop the change-capture triggers on it.
    op.drop_column("point_ledger", "spend_key")
