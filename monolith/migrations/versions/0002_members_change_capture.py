"""Change capture on the member tables (the sync job of the shared-DB stage reads it) and the
decision log of two-phase dual write. The member tables are named here as they were at this
revision: a migration does not read a service's live spec.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

from libs.dualwrite import install_change_capture, install_decision_log, uninstall_change_capture
from libs.dualwrite.capture import CapturedTable
from libs.dualwrite.freeze import uninstall_freeze_triggers

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MEMBERS = (CapturedTable("members", ("id",)), CapturedTable("point_ledger", ("id",)))


def upgrade() -> None:
    install_change_capture(op.get_bind(), MEMBERS)
    install_decision_log(op.get_bind())


def downgrade() -> None:
    uninstall_freeze_triggers(op.get_bind(), MEMBERS)
    uninstall_change_capture(op.get_bind(), MEMBERS)
    op.drop_table("dualwrite_decisions")
    op.drop_table("dualwrite_changes")
