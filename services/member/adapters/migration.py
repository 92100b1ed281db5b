"""The members extraction as the data-migration toolkit sees it: which legacy tables move
to the member DB. The monolith's migrations 0002 and 0010 install change capture on them, and
the member service's writer, sync job and reconciler all run on it."""

from __future__ import annotations

from libs.dualwrite import MigrationSpec, TableSpec
from services.member.adapters.tables import (
    legacy_members,
    legacy_point_ledger,
    legacy_signup_idempotency_keys,
    members,
    point_ledger,
    signup_idempotency_keys,
)

# Parents before children: the sync job applies rows in this order. The signups'
# Idempotency-Keys move with the members they answered (monolith migration 0010).
MEMBERS = MigrationSpec(
    "members",
    (
        TableSpec(legacy_members, members),
        TableSpec(legacy_point_ledger, point_ledger),
        TableSpec(legacy_signup_idempotency_keys, signup_idempotency_keys),
    ),
)
