"""The payments extraction as the data-migration toolkit sees it: which legacy tables move to
the payment DB. The monolith's migration 0007 installs change capture on them."""

from __future__ import annotations

from libs.dualwrite import MigrationSpec, TableSpec
from services.payment.adapters.tables import (
    idempotency_keys,
    legacy_idempotency_keys,
    legacy_payments,
    legacy_point_spends,
    payments,
    point_spends,
)

PAYMENTS = MigrationSpec(
    "payments",
    (
        TableSpec(legacy_payments, payments),
        TableSpec(legacy_idempotency_keys, idempotency_keys),
        TableSpec(legacy_point_spends, point_spends),
    ),
)
