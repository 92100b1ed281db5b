"""The orders extraction as the data-migration toolkit sees it: which legacy tables move to
the order DB. The monolith's migrations 0007 and 0009 install change capture on them, and the order
service's writer, sync job and reconciler all run on it."""

from __future__ import annotations

from libs.dualwrite import MigrationSpec, TableSpec
from services.order.adapters.tables import (
    legacy_order_idempotency_keys,
    legacy_order_lines,
    legacy_orders,
    order_idempotency_keys,
    order_lines,
    orders,
)

# Parents before children: the sync job applies rows in this order. The placements'
# Idempotency-Keys move with the orders they answered (monolith migration 0009).
ORDERS = MigrationSpec(
    "orders",
    (
        TableSpec(legacy_orders, orders),
        TableSpec(legacy_order_lines, order_lines),
        TableSpec(legacy_order_idempotency_keys, order_idempotency_keys),
    ),
)
