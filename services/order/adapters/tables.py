"""The order service's tables, and the legacy tables they are migrated from.

The legacy shapes are written out here rather than imported from the monolith: the service
must run without the monolith's code once the legacy DB is retired, and the shapes are the
contract of the migration. The order DB's orders and order lines mirror them column for
column; an order line's product stays a plain id there (products stay in the monolith's
catalogue, and the reconciler checks that each id still names one)."""

from __future__ import annotations

import sqlalchemy as sa

from libs.db.types import ID, Timestamp
from libs.dualwrite import mirror
from libs.events.inbox import inbox_tables
from libs.events.outbox import outbox_table
from libs.idempotency import key_table

legacy_metadata = sa.MetaData()

legacy_products = sa.Table(  # only what an order line refers to: the catalogue stays behind
    "products", legacy_metadata, sa.Column("id", ID, primary_key=True)
)

legacy_orders = sa.Table(
    "orders",
    legacy_metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("member_id", ID, nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.Column("updated_at", Timestamp(), nullable=False, index=True),
)

legacy_order_lines = sa.Table(
    "order_lines",
    legacy_metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("order_id", ID, sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("product_id", ID, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("unit_price", sa.BigInteger, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
)

# The Idempotency-Keys of order placements: a retried placement must find its first answer
# on whichever side it lands, so they move with the orders.
legacy_order_idempotency_keys = key_table("order_idempotency_keys", legacy_metadata)

metadata = sa.MetaData()
_mirrored = mirror((legacy_orders, legacy_order_lines, legacy_order_idempotency_keys), metadata)
orders = _mirrored["orders"]
order_lines = _mirrored["order_lines"]
order_idempotency_keys = _mirrored["order_idempotency_keys"]
# The order events, once they commit in the order DB (dual and single write); in the
# shared-DB stage they go to the legacy DB's outbox with the rest of the write.
event_outbox = outbox_table(metadata)
# The payment events consumer's parked events (its effects are keyed by the order's status).
events = inbox_tables(metadata)
