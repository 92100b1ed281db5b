"""The Alembic migrations build exactly the schema the code describes, on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from libs.db import make_engine
from monolith.adapters.migrate import downgrade, upgrade
from monolith.adapters.tables import metadata


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'legacy.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_the_migrated_schema_matches_the_tables_the_code_uses(engine):
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": not_the_toolkits})
        diff = compare_metadata(context, metadata)
    assert diff == []


def not_the_toolkits(name, type_, _parent) -> bool:
    """The data-migration toolkit's own tables (change capture, decision log) are installed
    by migration 0002 from the members spec, not described in the monolith's tables."""
    return not (type_ == "table" and name.startswith("dualwrite_"))


def test_migration_0002_captures_member_changes_and_downgrades_cleanly(engine):
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO members (email, password_hash, name, points, created_at, updated_at)"
                " VALUES ('a@example.com', 'x', 'A', 0, :now, :now)"
            ),
            {"now": datetime.now(UTC)},
        )
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM dualwrite_changes")) == 1
    downgrade(engine, "0001")
    assert not {"dualwrite_changes", "dualwrite_decisions"} & set(
        sa.inspect(engine).get_table_names()
    )


def test_upgrading_twice_is_harmless(engine):
    upgrade(engine)
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0010"


ORDER = (
    "INSERT INTO orders (member_id, status, total, created_at, updated_at)"
    " VALUES (999, 'PLACED', 1000, :now, :now)"
)


def test_migration_0003_lets_orders_name_a_member_the_legacy_db_never_had(engine):
    """After the cutover a member signs up in the member DB only; the monolith must still
    take their orders, so orders keep the id without a foreign key into legacy members."""
    upgrade(engine, "0002")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(ORDER), {"now": datetime.now(UTC)})
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(ORDER), {"now": datetime.now(UTC)})
        conn.execute(sa.text("DELETE FROM orders"))
    downgrade(engine, "0002")
    assert {"features", "member_points_outbox"}.isdisjoint(sa.inspect(engine).get_table_names())
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(ORDER), {"now": datetime.now(UTC)})


OWED = (
    "INSERT INTO member_points_outbox (member_id, delta, reason, payment_id, created_at)"
    " VALUES (1, 100, 'pay', 7, :now)"
)


def test_migration_0004_refuses_while_the_old_points_outbox_still_owes_changes(engine):
    """0004 drops the points outbox of 0003; a change still owed there would be lost, so the
    upgrade stops and says so instead, and goes through once it was delivered."""
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(sa.text(OWED), {"now": datetime.now(UTC)})
    with pytest.raises(RuntimeError, match="not delivered yet"):
        upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE member_points_outbox SET delivered_at = created_at"))
    upgrade(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"point_spends", "event_outbox"} <= tables and "member_points_outbox" not in tables
    downgrade(engine, "0003")
    columns = {c["name"] for c in sa.inspect(engine).get_columns("point_ledger")}
    assert "spend_key" not in columns
    assert {"point_spends", "event_outbox"}.isdisjoint(sa.inspect(engine).get_table_names())


def test_migration_0006_gives_every_order_the_stock_hold_its_status_implies(engine):
    """Placed and paid orders hold their lines; cancelled and refunded ones released theirs.
    So stock + held is what it was, and a late release cannot give their stock back twice."""
    upgrade(engine, "0005")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO products (id, sku, name, price, stock, updated_at)"
                " VALUES (1, 'TEE-001', 'Tee', 100, 10, :now), (2, 'CAP-001', 'Cap', 50, 5, :now)"
            ),
            {"now": now},
        )
        for oid, status in enumerate(("PLACED", "PAID", "CANCELLED", "REFUNDED"), start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO orders (id, member_id, status, total, created_at, updated_at)"
                    " VALUES (:id, 3, :status, 250, :now, :now)"
                ),
                {"id": oid, "status": status, "now": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO order_lines (order_id, product_id, name, unit_price, quantity)"
                    " VALUES (:id, 2, 'Cap', 50, 1), (:id, 1, 'Tee', 100, 2)"
                ),
                {"id": oid},
            )
    upgrade(engine, "0006")
    with engine.connect() as conn:
        holds = conn.execute(
            sa.text("SELECT order_id, status, lines FROM stock_holds ORDER BY order_id")
        ).all()
    lines = [
        {"product_id": 2, "name": "Cap", "unit_price": 50, "quantity": 1},
        {"product_id": 1, "name": "Tee", "unit_price": 100, "quantity": 2},
    ]
    assert [(oid, status, _json(held)) for oid, status, held in holds] == [
        (1, "held", lines),
        (2, "held", lines),
        (3, "released", lines),
        (4, "released", lines),
    ]
    downgrade(engine, "0005")
    assert "stock_holds" not in sa.inspect(engine).get_table_names()


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


PAYMENT = (
    "INSERT INTO payments (order_id, member_id, amount, method, status, points_earned,"
    " points_spent, created_at, updated_at)"
    " VALUES (4242, 1, 1000, 'card', 'CAPTURED', 10, 0, :now, :now)"
)


def test_migration_0007_captures_commerce_changes_and_lets_payments_name_any_order(engine):
    """Orders and payments move to two services: a payment keeps its order's id without a
    foreign key (an order placed after the orders' cutover is not in the legacy table), and
    every change to the moving tables is captured for their sync jobs."""
    upgrade(engine, "0006")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(PAYMENT), {"now": datetime.now(UTC)})
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(PAYMENT), {"now": datetime.now(UTC)})
        conn.execute(sa.text(ORDER), {"now": datetime.now(UTC)})
    with engine.connect() as conn:
        captured = conn.execute(sa.text("SELECT table_name FROM dualwrite_changes")).scalars()
        assert {"payments", "orders"} <= set(captured)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM payments"))
    downgrade(engine, "0006")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(PAYMENT), {"now": datetime.now(UTC)})
