"""Row access shared by the sync job and the reconciler: one side of a moving table (legacy
or new), rows as tuples in the spec's column order, keys as tuples."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

Key = tuple
Row = tuple

# Keeps IN lists far below SQLite's bound-parameter limit and PostgreSQL's plan-size comfort.
_IN_CHUNK = 500


@dataclass(frozen=True)
class Side:
    table: sa.Table
    columns: tuple[sa.Column, ...]
    key: tuple[sa.Column, ...]
    key_positions: tuple[int, ...]

    @classmethod
    def of(cls, table: sa.Table, columns: Sequence[str], key: Sequence[str]) -> Side:
        cols = tuple(table.c[name] for name in columns)
        return cls(
            table, cols, tuple(table.c[k] for k in key), tuple(columns.index(k) for k in key)
        )

    def key_of(self, row: Row) -> Key:
        return tuple(row[p] for p in self.key_positions)

    def key_clause(self, keys: Sequence[Key]) -> sa.ColumnElement[bool]:
        if len(self.key) == 1:
            return self.key[0].in_([k[0] for k in keys])
        return sa.tuple_(*self.key).in_([tuple(k) for k in keys])

    def key_expr(self) -> sa.ColumnElement:
        return self.key[0] if len(self.key) == 1 else sa.tuple_(*self.key)

    def bound(self, key: Key) -> sa.ColumnElement | sa.BindParameter:
        return key[0] if len(self.key) == 1 else sa.tuple_(*[sa.literal(v) for v in key])


def chunks(items: Sequence, size: int = _IN_CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def fetch(conn: sa.Connection, side: Side, keys: Iterable[Key]) -> dict[Key, Row]:
    """The current rows for these keys; a key absent from the result no longer exists."""
    found: dict[Key, Row] = {}
    for part in chunks(sorted(set(keys))):
        for row in conn.execute(sa.select(*side.columns).where(side.key_clause(part))):
            found[side.key_of(tuple(row))] = tuple(row)
    return found


def existing_keys(conn: sa.Connection, side: Side, keys: Iterable[Key]) -> set[Key]:
    present: set[Key] = set()
    for part in chunks(sorted(set(keys))):
        present.update(
            tuple(r) for r in conn.execute(sa.select(*side.key).where(side.key_clause(part)))
        )
    return present


def upsert(conn: sa.Connection, side: Side, rows: Sequence[Row]) -> None:
    """Insert or overwrite by key: applying the same rows twice leaves the same state."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(side.table)
    others = [c for c in side.columns if c not in side.key]
    if others:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(side.key), set_={c.name: stmt.excluded[c.name] for c in others}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(side.key))
    names = [c.name for c in side.columns]
    for part in chunks(rows):
        conn.execute(stmt, [dict(zip(names, row, strict=True)) for row in part])


def delete(conn: sa.Connection, side: Side, keys: Sequence[Key]) -> int:
    deleted = 0
    for part in chunks(sorted(set(keys))):
        deleted += conn.execute(sa.delete(side.table).where(side.key_clause(part))).rowcount
    return deleted


def scan(conn: sa.Connection, side: Side, low: Key | None, high: Key | None) -> list[Row]:
    """Rows with low <= key < high (either bound open), in key order."""
    query = sa.select(*side.columns).order_by(*side.key)
    if low is not None:
        query = query.where(side.key_expr() >= side.bound(low))
    if high is not None:
        query = query.where(side.key_expr() < side.bound(high))
    return [tuple(r) for r in conn.execute(query)]


def boundaries(conn: sa.Connection, side: Side, every: int) -> list[Key]:
    """Every `every`-th key in order: the lower bounds of chunks after the first."""
    found: list[Key] = []
    last: Key | None = None
    while True:
        query = sa.select(*side.key).order_by(*side.key).offset(every).limit(1)
        if last is not None:
            query = query.where(side.key_expr() >= side.bound(last))
        row = conn.execute(query).first()
        if row is None:
            return found
        last = tuple(row)
        found.append(last)
