"""The legacy schema (SQLAlchemy Core). Alembic migrations under monolith/migrations create it;
this module describes it for queries."""

from __future__ import annotations

import sqlalchemy as sa

from libs.db.types import ID, Timestamp
from libs.events.inbox import inbox_tables
from libs.events.outbox import outbox_table
from libs.idempotency import key_table

metadata = sa.MetaData()

members = sa.Table(
    "members",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("phone", sa.String(20)),
    sa.Column("points", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.Column("updated_at", Timestamp(), nullable=False, index=True),
    # One more with every change of the row, in SQL (`version + 1`), whoever makes it: the
    # sequence of the member's events on `shop.members` (migration 0008).
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.CheckConstraint("points >= 0", name="members_points_not_negative"),
)

point_ledger = sa.Table(
    "point_ledger",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("member_id", ID, sa.ForeignKey("members.id"), nullable=False, index=True),
    sa.Column("delta", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("payment_id", ID),
    sa.Column("created_at", Timestamp(), nullable=False),
    # The member service's key of a debit it was asked for (and of its cancel), while it
    # writes this table in the shared-DB stages; NULL for lines keyed by (payment_id, reason).
    sa.Column("spend_key", sa.String(64)),
    sa.Index("ix_point_ledger_spend_key", "spend_key", unique=True),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("sku", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("price", sa.BigInteger, nullable=False),
    sa.Column("stock", sa.Integer, nullable=False),
    sa.Column("updated_at", Timestamp(), nullable=False),
    sa.CheckConstraint("stock >= 0", name="products_stock_not_negative"),
    sa.CheckConstraint("price > 0", name="products_price_positive"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    # The member's id, not a foreign key: members move to the member service (migration 0003).
    sa.Column("member_id", ID, nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.Column("updated_at", Timestamp(), nullable=False, index=True),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("order_id", ID, sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("product_id", ID, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("unit_price", sa.BigInteger, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    # One payment per order, enforced by the database: a second capture cannot exist.
    # The order's id, not a foreign key: orders and payments move to different services
    # (migration 0007).
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

idempotency_keys = key_table("idempotency_keys", metadata)

# The Idempotency-Keys of order placements: they move to the order service with the orders
# (services/order/adapters/migration.py), as the payments' keys move with the payments.
order_idempotency_keys = key_table("order_idempotency_keys", metadata)

# The Idempotency-Keys of signups (member_id 0: the caller is no member yet); they move to the
# member service with the members (services/member/adapters/migration.py).
signup_idempotency_keys = key_table("signup_idempotency_keys", metadata)

# The switches the stage engine flips in the running monolith (service_layer/features.py).
features = sa.Table(
    "features",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.String(40), nullable=False),
    sa.Column("updated_at", Timestamp(), nullable=False),
)

# The payments' debits of points at the member service, once it owns them: each attempt's
# key is written and committed here before the call, so a debit whose payment then fails, or
# whose process died before it knew, is always found and given back
# (service_layer/points.py).
point_spends = sa.Table(
    "point_spends",
    metadata,
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

# Events (shop.payments, shop.orders, shop.members), written in the change's transaction,
# published by the relay after it commits (libs/events).
event_outbox = outbox_table(metadata)

# Fulfilment, which stays in the monolith: a paid order gets a shipment to pack, a refunded
# one has it cancelled. Fed by the payment events (service_layer/fulfilment.py).
shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("order_id", ID, primary_key=True),
    sa.Column("payment_id", ID, nullable=False),
    sa.Column("member_id", ID, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.Column("updated_at", Timestamp(), nullable=False),
)
# The fulfilment consumer group's inbox and parked events.
event_inbox = inbox_tables(metadata)

# The catalogue's stock holds, one per order, keyed by the order's id: "held" while the order
# keeps its lines' units out of stock, "released" once they went back (or, with no lines, a
# tombstone that refuses a hold arriving after its release). Orders may live elsewhere (the
# order service), so no foreign key (service_layer/catalog.py).
stock_holds = sa.Table(
    "stock_holds",
    metadata,
    sa.Column("order_id", ID, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(20), nullable=False),
    # [{product_id, name, unit_price, quantity}]: the lines as priced when they were held.
    sa.Column("lines", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp(), nullable=False),
    sa.Column("updated_at", Timestamp(), nullable=False),
)
