"""Moving tables that refer to a table which stays behind (order lines name a product; the
catalogue stays in the monolith): `mirror()` keeps the column but not the constraint, which
the new DB could not satisfy, and the reconciler checks every value still names a legacy row.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from libs.db import make_engine
from libs.dualwrite import MigrationSpec, Reconciler, TableSpec, mirror

legacy_metadata = sa.MetaData()
products = sa.Table(
    "products",
    legacy_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sku", sa.String(20)),
)
orders = sa.Table(
    "orders",
    legacy_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
)
order_lines = sa.Table(
    "order_lines",
    legacy_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("product_id", sa.ForeignKey("products.id"), nullable=False, index=True),
)
new_metadata = sa.MetaData()
moved = mirror((orders, order_lines), new_metadata)
SPEC = MigrationSpec(
    "orders",
    (TableSpec(orders, moved["orders"]), TableSpec(order_lines, moved["order_lines"])),
)


def test_the_mirror_keeps_references_between_moving_tables_and_drops_the_rest():
    lines = moved["order_lines"]
    assert [fk.referred_table.name for fk in lines.foreign_key_constraints] == ["orders"]
    assert "product_id" in lines.c and lines.c.product_id.index  # the column and its index stay
    assert [r.describe() for r in SPEC.external_references()] == [
        "order_lines.product_id -> products.id"
    ]
    assert [(r.child.name, r.parent.name) for r in SPEC.references()] == [("order_lines", "orders")]


def test_the_reconciler_reports_a_moved_value_that_names_no_legacy_row(urls):
    legacy, new = make_engine(urls[0]), make_engine(urls[1])
    try:
        legacy_metadata.create_all(legacy)
        new_metadata.create_all(new)  # raised NoReferencedTableError before: no products here
        now = datetime.now(UTC)
        with legacy.begin() as conn:
            conn.execute(products.insert(), [{"id": 1, "sku": "TEE"}, {"id": 2, "sku": "CAP"}])
            conn.execute(orders.insert().values(id=1, placed_at=now))
        with new.begin() as conn:
            conn.execute(moved["orders"].insert().values(id=1, placed_at=now))
        with legacy.begin() as conn:
            conn.execute(order_lines.insert().values(id=1, order_id=1, product_id=2))
        with new.begin() as conn:
            conn.execute(moved["order_lines"].insert().values(id=1, order_id=1, product_id=2))
        assert not Reconciler(SPEC, legacy, new).check().has_drift

        # A product deleted in the legacy DB while its order line lives on in the new DB:
        # no constraint can catch it any more, the reconciler must.
        with legacy.begin() as conn:
            conn.execute(order_lines.delete())
            conn.execute(products.delete().where(products.c.id == 2))
        with new.begin() as conn:
            conn.execute(moved["order_lines"].update().values(product_id=2))
        report = Reconciler(SPEC, new, legacy, direction="new->legacy").check()
        assert report.has_drift
        assert [(d.reference, d.count, d.samples) for d in report.dangling] == [
            ("order_lines.product_id -> products.id", 1, [2])
        ]
        assert "order_lines.product_id -> products.id: DRIFT 1 value(s)" in report.render()
    finally:
        legacy.dispose()
        new.dispose()
