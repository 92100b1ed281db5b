"""Points owned by the member service, and payment events: the points outbox of 0003 (debits
delivered after the payment committed, so two payments could both pass one balance check)
gives way to a log of the debits asked of the member service before each payment commits, and
the payments announce themselves through the events outbox. The point ledger keeps the member
service's debit keys, as its own ledger does (member migration 0002).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from libs.events.outbox import outbox_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    bind = op.get_bind()
    waiting = bind.scalar(
        sa.text("SELECT count(*) FROM member_points_outbox WHERE delivered_at IS NULL")
    )
    if waiting:
        raise RuntimeError(
            f"{waiting} points changes in member_points_outbox are not delivered yet: start "
            "the previous version until /admin/member-points shows none pending, then upgrade"
        )
    op.drop_table("member_points_outbox")
    op.add_column("point_ledger", sa.Column("spend_key", sa.String(64)))
    op.create_index("ix_point_ledger_spend_key", "point_ledger", ["spend_key"], unique=True)
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
    )
    op.create_index("ix_point_spends_status", "point_spends", ["status"])
    # The outbox shape as libs/events defines it at this revision; a later change to it comes
    # with a migration of its own.
    outbox_table(sa.MetaData()).create(bind)


def downgrade() -> None:
    op.drop_table("event_outbox")
    op.drop_index("ix_point_spends_status", table_name="point_spends")
    op.drop_table("point_spends")
    op.drop_index("ix_point_ledger_spend_key", table_name="point_ledger")
    # Not batch mode: rebuilding the table would drop the change-capture triggers on it.
    op.drop_column("point_ledger", "spend_key")
    op.create_table(
        "member_points_outbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("delta", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("payment_id", ID, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(200)),
        sa.UniqueConstraint("payment_id", "reason", name="member_points_outbox_once"),
    )
