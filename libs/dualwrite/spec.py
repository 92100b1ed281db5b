"""Which tables move to the new DB, by which key, and under which column names.

A `MigrationSpec` is the whole configuration of one extraction (members, orders, ...); the
sync job, the dual writer and the reconciler all read it, so a domain is configuration, not
code."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from libs.dualwrite.rows import Side

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class TableSpec:
    """One table that moves: its legacy definition, its new definition, and how columns map.

    `columns` maps legacy column names to new ones; left empty, every legacy column keeps its
    name. `key` defaults to the legacy table's primary key."""

    legacy: sa.Table
    new: sa.Table
    columns: Mapping[str, str] = field(default_factory=dict)
    key: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.columns:
            object.__setattr__(self, "columns", {c.name: c.name for c in self.legacy.columns})
        if not self.key:
            object.__setattr__(self, "key", tuple(c.name for c in self.legacy.primary_key))
        if not self.key:
            raise ValueError(f"table {self.legacy.name} needs a primary key to move")
        self._check_columns()

    def _check_columns(self) -> None:
        missing = [c for c in self.columns if c not in self.legacy.c]
        missing += [c for c in self.columns.values() if c not in self.new.c]
        missing += [k for k in self.key if k not in self.columns]
        if missing:
            raise ValueError(f"table {self.legacy.name}: unknown columns {missing}")

    @property
    def name(self) -> str:
        return self.legacy.name

    @property
    def legacy_side(self) -> Side:
        return Side.of(self.legacy, list(self.columns), self.key)

    @property
    def new_side(self) -> Side:
        return Side.of(self.new, list(self.columns.values()), [self.columns[k] for k in self.key])


@dataclass(frozen=True)
class Reference:
    """A foreign key between two moving tables (child -> parent), positions in `Side.columns`."""

    child: TableSpec
    parent: TableSpec
    child_columns: tuple[int, ...]


@dataclass(frozen=True)
class ExternalReference:
    """A foreign key of a moving table into a table that stays in the legacy DB (an order
    line's product, while the catalogue stays behind). The new DB keeps the column without the
    constraint, since the referred table is not there; the reconciler checks that every value
    still names a legacy row."""

    table: TableSpec
    column: str  # the legacy column
    referred_table: str  # in the legacy DB
    referred_column: str

    @property
    def new_column(self) -> str:
        return self.table.columns[self.column]

    def describe(self) -> str:
        return f"{self.table.name}.{self.column} -> {self.referred_table}.{self.referred_column}"


@dataclass(frozen=True)
class MigrationSpec:
    """The tables of one extraction, parents before children (the order rows are applied in)."""

    name: str
    tables: tuple[TableSpec, ...]

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"spec name {self.name!r} must match {_NAME.pattern}")
        object.__setattr__(self, "tables", tuple(self.tables))
        self.references()
        self.external_references()

    def table(self, name: str) -> TableSpec:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"{name} is not part of migration {self.name}")

    def references(self) -> list[Reference]:
        """Foreign keys of the new tables that point at other moving tables.

        The sync job uses them to bring a missing parent along with its child and to remove
        children before their parent, so the new DB's own constraints never reject a batch."""
        found = []
        for position, child in enumerate(self.tables):
            for fk in child.new.foreign_key_constraints:
                parent = self._by_new_table(fk.referred_table)
                if parent is None:
                    continue
                if self.tables.index(parent) >= position:
                    raise ValueError(f"{parent.name} must come before {child.name} in the spec")
                found.append(Reference(child, parent, _positions(child, parent, fk)))
        return found

    def external_references(self) -> list[ExternalReference]:
        """Foreign keys of the legacy tables that point at tables which do not move."""
        moving = {t.legacy.name for t in self.tables}
        found = []
        for table in self.tables:
            for fk in table.legacy.foreign_key_constraints:
                referred, _, _ = fk.elements[0].target_fullname.rpartition(".")
                if referred in moving:
                    continue
                if len(fk.elements) != 1:
                    raise ValueError(
                        f"{table.name}: a composite foreign key into {referred}, which stays, "
                        "cannot be checked across the two DBs yet"
                    )
                element = fk.elements[0]
                column = element.target_fullname.rpartition(".")[2]
                found.append(ExternalReference(table, element.parent.name, referred, column))
        return found

    def _by_new_table(self, table: sa.Table) -> TableSpec | None:
        return next((t for t in self.tables if t.new is table), None)


def _positions(child: TableSpec, parent: TableSpec, fk: sa.ForeignKeyConstraint) -> tuple[int, ...]:
    new_names = list(child.columns.values())
    by_parent_column = {e.column.name: e.parent.name for e in fk.elements}
    parent_key = [parent.columns[k] for k in parent.key]
    if sorted(by_parent_column) != sorted(parent_key):
        raise ValueError(f"{child.name}: foreign keys must reference {parent.name}'s key")
    return tuple(new_names.index(by_parent_column[k]) for k in parent_key)


def mirror(tables: Iterable[sa.Table], metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Copies of legacy tables for the new DB, same names and columns (the usual first step).

    A foreign key into a table that is not among them (one that stays in the legacy DB) is
    left out of the copy: the column stays, the constraint cannot, and the reconciler checks
    those values instead (`MigrationSpec.external_references`)."""
    tables = list(tables)
    moving = {t.name for t in tables}
    copies = {}
    for table in tables:
        copy = table.to_metadata(metadata)
        for fk in list(copy.foreign_key_constraints):
            if fk.elements[0].target_fullname.rpartition(".")[0] not in moving:
                copy.constraints.discard(fk)
                for element in fk.elements:
                    element.parent.foreign_keys.discard(element)
                    copy.foreign_keys.discard(element)
        copies[table.name] = copy
    return copies
