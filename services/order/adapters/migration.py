"""The orders extraction as the data-migration toolkit sees it: which legacy tables move to
the order DB. The monolith's migration 0007 installs change capture on them, and the order
service's writer, sync job and reconciler all run on it."""

from __future__ import annotations

from libs.dualwrite import MigrationSpec, TableSpec
from services.order.adapters.tables import legacy_order_lines, legacy_orders, order_lines, orders

# Parents before children: the sync job applies rows in this order.
ORDERS = MigrationSpec(
    "orders", (TableSpec(legacy_orders, orders), TableSpec(legacy_order_lines, order_lines))
)
