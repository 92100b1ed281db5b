"""The payment service's tables, and the legacy tables they are migrated from (written out
here, not imported from the monolith: see services/order/adapters/tables.py).

Three tables move together: the payments; the idempotency keys of the payment requests (a
retried payment must find its first answer on whichever side it lands); and the attempts of
the points debits the payments asked of the member service (`point_spends`, the saga of
services/member/debits.py), so the payment that uses a debit and the debit commit together."""

from __future__ import annotations

import sqlalchemy as sa

from libs.db.types import ID, Timestamp
from libs.dualwrite import mirror
from libs.events.outbox import outbox_table
from libs.idempotency import key_table

legacy_metadata = sa.MetaData()

legacy_payments = sa.Table(
    "payments",
    legacy_metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    # One payment per order, enforced by the database: a second capture cannot exist. The
    # order is another service's (no foreign key since the monolith's migration 0007).
    sa.Column("order_id", ID, nullable=False, unique=True),
    sa.Column("member_id", ID, nullable=False, index=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("points_earned", sa.BigInteger, nullable=False),
    sa.Column("points_spent", sa.BigInteger, nullable=False),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.Column("updated_at", Timestamp(), nullable=False, index=True),
)

legacy_idempotency_keys = key_table("idempotency_keys", legacy_metadata)

legacy_point_spends = sa.Table(
    "point_spends",
    legacy_metadata,
    sa.Column("key", sa.String(36), primary_key=True),
    sa.Column("member_id", ID, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("order_id", ID, nullable=False),
    sa.Column("payment_id", ID),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.Column("updated_at", Timestamp(), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.String(200)),
    sa.Index("ix_point_spends_status", "status"),
)

metadata = sa.MetaData()
_mirrored = mirror((legacy_payments, legacy_idempotency_keys, legacy_point_spends), metadata)
payments = _mirrored["payments"]
idempotency_keys = _mirrored["idempotency_keys"]
point_spends = _mirrored["point_spends"]
# The payment events, once they commit in the payment DB (dual and single write).
event_outbox = outbox_table(metadata)
