"""The members extraction as the data-migration toolkit sees it: which legacy tables move
to the member DB. The monolith's migration 0002 installs change capture from this spec, and
the member service's writer, sync job and reconciler all run on it."""

from __future__ import annotations

from libs.dualwrite import MigrationSpec, TableSpec
from services.member.adapters.tables import (
    legacy_members,
    legacy_point_ledger,
    members,
    point_ledger,
)

# Parents before children: the sync job applies rows in this order.
MEMBERS = MigrationSpec(
    "members",
    (TableSpec(legacy_members, members), TableSpec(legacy_point_ledger, point_ledger)),
)
