"""One text form per value, whichever DB the row came from, so a row of the same data hashes
equally on SQLite and PostgreSQL (SQLite hands back naive datetimes and floats where
PostgreSQL has aware datetimes and numerics)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID


def canonical(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return int(value)  # SQLite stores booleans as 0/1
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        return _number(value)
    if isinstance(value, datetime):
        # Naive values are UTC by this project's convention (SQLite drops the offset).
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def _number(value: float | Decimal) -> int | str:
    number = Decimal(str(value)) if isinstance(value, float) else value
    if number == number.to_integral_value():
        return int(number)
    return format(number.normalize(), "f")


def canonical_row(row: Iterable[Any]) -> str:
    return json.dumps([canonical(v) for v in row], separators=(",", ":"))


def checksum(rows: Iterable[Iterable[Any]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(canonical_row(row).encode())
        digest.update(b"\n")
    return digest.hexdigest()
