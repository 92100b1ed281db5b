"""Ready the monolith for members to leave: orders and payments keep a member's id but no
longer a foreign key into the members table (that table moves to the member service, and a
member who signs up there after the cutover never appears in it); a feature table for the
switches the stage engine flips; an outbox for points changes owed to the member service.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
# SQLite's foreign keys have no names; batch mode rebuilds the table and names them by this.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
TABLES = ("orders", "payments")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # The rebuild drops and renames tables that order_lines refers to; checked at commit.
        op.execute("PRAGMA defer_foreign_keys = ON")
    for table in TABLES:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(_member_fk(bind, table), type_="foreignkey")
    op.create_table(
        "features",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.String(40), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
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


def downgrade() -> None:
    op.drop_table("member_points_outbox")
    op.drop_table("features")
    for table in TABLES:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.create_foreign_key(
                f"fk_{table}_member_id_members", "members", ["member_id"], ["id"]
            )


def _member_fk(bind: sa.Connection, table: str) -> str:
    for fk in sa.inspect(bind).get_foreign_keys(table):
        if fk["referred_table"] == "members":
            return fk["name"] or NAMING["fk"] % {
                "table_name": table,
                "column_0_name": "member_id",
                "referred_table_name": "members",
            }
    raise RuntimeError(f"{table} has no foreign key to members")
