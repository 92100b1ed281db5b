"""Fulfilment: shipments, made by the payment events (a paid order's shipment is ready to
pack, a refunded order's is cancelled), and the inbox and parked events of the consumer group
that applies them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from libs.events.inbox import inbox_tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shipments",
        sa.Column("order_id", ID, primary_key=True),
        sa.Column("payment_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    # The inbox shape as libs/events defines it at this revision; a later change to it comes
    # with a migration of its own.
    tables = inbox_tables(sa.MetaData())
    tables.inbox.create(op.get_bind())
    tables.parked.create(op.get_bind())


def downgrade() -> None:
    op.drop_table("parked_events")
    op.drop_table("event_inbox")
    op.drop_table("shipments")
