"""Applying a batch of captured changes to the new DB.

Each changed key gets the row's *current* legacy state (or is deleted when the row is gone),
so applying a batch twice gives the same result as once: the property that makes the sync job
safe to retry after any failure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import sqlalchemy as sa

from libs.dualwrite import rows
from libs.dualwrite.rows import Key, Row
from libs.dualwrite.spec import MigrationSpec, Reference

Applied = Counter  # (table, "upsert" | "delete") -> rows


def apply_keys(
    legacy: sa.Connection,
    new: sa.Connection,
    spec: MigrationSpec,
    changed: dict[str, set[Key]],
) -> Applied:
    current = {
        t.name: rows.fetch(legacy, t.legacy_side, changed.get(t.name, ())) for t in spec.tables
    }
    references = spec.references()
    _bring_missing_parents(legacy, new, references, current)
    gone = {
        t.name: [k for k in changed.get(t.name, ()) if k not in current[t.name]]
        for t in spec.tables
    }
    applied: Applied = Counter()
    for table in reversed(spec.tables):
        doomed = gone.get(table.name, [])
        if doomed:
            applied[table.name, "delete"] += _delete_with_children(new, references, table, doomed)
    for table in spec.tables:
        rows.upsert(new, table.new_side, list(current[table.name].values()))
        applied[table.name, "upsert"] += len(current[table.name])
    return applied


def _bring_missing_parents(
    legacy: sa.Connection,
    new: sa.Connection,
    references: list[Reference],
    current: dict[str, dict[Key, Row]],
) -> None:
    """A child can be captured before its parent: PostgreSQL orders transactions by when they
    started writing, not when they committed, so the parent's insert may land in a later batch.
    Bringing the parent's current row along keeps the new DB's foreign keys satisfied.
    Children are visited before parents, so grandparents follow too."""
    for ref in reversed(references):
        wanted = {_parent_key(ref, row) for row in current[ref.child.name].values()}
        wanted = {k for k in wanted if None not in k and k not in current[ref.parent.name]}
        if not wanted:
            continue
        missing = wanted - rows.existing_keys(new, ref.parent.new_side, wanted)
        current[ref.parent.name].update(rows.fetch(legacy, ref.parent.legacy_side, missing))


def _parent_key(ref: Reference, row: Row) -> Key:
    return tuple(row[p] for p in ref.child_columns)


def _delete_with_children(
    new: sa.Connection, references: list[Reference], table, doomed: list[Key]
) -> int:
    """Delete rows whose legacy row is gone, after the new DB's children that still point at
    them (their own deletes may sit in a later batch; the legacy DB's foreign keys say those
    children are gone or moved there too)."""
    deleted = 0
    for ref in references:
        if ref.parent is table:
            deleted += _delete_referencing(new, ref, doomed)
    return deleted + rows.delete(new, table.new_side, doomed)


def _delete_referencing(new: sa.Connection, ref: Reference, parents: Iterable[Key]) -> int:
    side = ref.child.new_side
    columns = [side.columns[p] for p in ref.child_columns]
    deleted = 0
    for part in rows.chunks(sorted(set(parents))):
        if len(columns) == 1:
            clause = columns[0].in_([k[0] for k in part])
        else:
            clause = sa.tuple_(*columns).in_([tuple(k) for k in part])
        deleted += new.execute(sa.delete(side.table).where(clause)).rowcount
    return deleted
