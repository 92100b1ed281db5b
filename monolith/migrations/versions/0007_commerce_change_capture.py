"""Ready the monolith for orders and payments to leave: change capture on the tables that move
to the order service (orders, order lines) and to the payment service (payments, their
idempotency keys, the points debits' attempts), which the batch sync of their shared-DB stage
reads; and a payment keeps its order's id but no longer a foreign key into orders (the two
move to different services, and an order placed after the orders' cutover never appears in
the legacy table). The tables are named here as they were at this revision.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from libs.dualwrite import install_change_capture, uninstall_change_capture
from libs.dualwrite.capture import CapturedTable
from libs.dualwrite.freeze import uninstall_freeze_triggers

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COMMERCE = (
    CapturedTable("orders", ("id",)),
    CapturedTable("order_lines", ("id",)),
    CapturedTable("payments", ("id",)),
    CapturedTable("idempotency_keys", ("member_id", "key")),
    CapturedTable("point_spends", ("key",)),
)
# SQLite's foreign keys have no names; batch mode rebuilds the table and names them by this.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("PRAGMA defer_foreign_keys = ON")
    with op.batch_alter_table("payments", naming_convention=NAMING) as batch:
        batch.drop_constraint(_order_fk(bind), type_="foreignkey")
    install_change_capture(bind, COMMERCE)


def downgrade() -> None:
    uninstall_freeze_triggers(op.get_bind(), COMMERCE)
    uninstall_change_capture(op.get_bind(), COMMERCE)
    with op.batch_alter_table("payments", naming_convention=NAMING) as batch:
        batch.create_foreign_key("fk_payments_order_id_orders", "orders", ["order_id"], ["id"])


def _order_fk(bind: sa.Connection) -> str:
    for fk in sa.inspect(bind).get_foreign_keys("payments"):
        if fk["referred_table"] == "orders":
            return fk["name"] or NAMING["fk"] % {
                "table_name": "payments",
                "column_0_name": "order_id",
                "referred_table_name": "orders",
            }
    raise RuntimeError("payments has no foreign key to orders")
