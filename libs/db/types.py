"""Column types every schema shares, so the legacy DB and each service DB store ids and
times the same way (and the reconciler compares them as equal)."""

from __future__ import annotations

from datetime import UTC

import sqlalchemy as sa

# BIGINT on PostgreSQL; SQLite's rowid alias must be INTEGER to autoincrement.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Timestamp(sa.types.TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
