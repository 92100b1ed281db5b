"""The member service's tables, and the legacy tables they are migrated from.

The legacy shapes are written out here rather than imported from the monolith: the service
must run without the monolith's code once the legacy DB is retired, and the shapes are the
contract of the migration (what the sync job reads, what dual write writes). The member DB's
tables mirror them column for column, so the migration maps them 1:1."""

from __future__ import annotations

import sqlalchemy as sa

from libs.db.types import ID, Timestamp
from libs.dualwrite import mirror
from libs.events.inbox import inbox_tables
from libs.events.outbox import outbox_table
from libs.idempotency import key_table

legacy_metadata = sa.MetaData()

legacy_members = sa.Table(
    "members",
    legacy_metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("phone", sa.String(20)),
    sa.Column("points", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.Column("updated_at", Timestamp(), nullable=False, index=True),
    # One more with every change of the row, in SQL (`version + 1`): the sequence of the
    # member's events (services/member/events.py). Monolith migration 0008.
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.CheckConstraint("points >= 0", name="members_points_not_negative"),
)

legacy_point_ledger = sa.Table(
    "point_ledger",
    legacy_metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("member_id", ID, sa.ForeignKey("members.id"), nullable=False, index=True),
    sa.Column("delta", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("payment_id", ID),
    sa.Column("created_at", Timestamp(), nullable=False),
    # The caller's key of a debit it asked for (and of its cancel): what makes SpendPoints
    # and CancelSpend idempotent. NULL for lines keyed by (payment_id, reason).
    sa.Column("spend_key", sa.String(64)),
    sa.Index("ix_point_ledger_spend_key", "spend_key", unique=True),
)

# The Idempotency-Keys of signups (member_id 0: the caller is no member yet). A retried signup
# must find its first answer on whichever side it lands, so they move with the members.
legacy_signup_idempotency_keys = key_table("signup_idempotency_keys", legacy_metadata)

metadata = sa.MetaData()
_mirrored = mirror((legacy_members, legacy_point_ledger, legacy_signup_idempotency_keys), metadata)
members = _mirrored["members"]
point_ledger = _mirrored["point_ledger"]
signup_idempotency_keys = _mirrored["signup_idempotency_keys"]
# The member events, once they commit in the member DB (dual and single write); in the
# shared-DB stage they go to the legacy DB's outbox with the rest of the write.
event_outbox = outbox_table(metadata)
# The payment events consumer's parked events (its effects are keyed by the ledger itself).
events = inbox_tables(metadata)
