"""The invariant checks must catch what they claim to catch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from libs.db import make_engine
from monolith import invariants
from monolith.adapters.migrate import upgrade
from monolith.adapters.tables import members, orders, products
from monolith.domain.orders import PENDING, LineRequest
from monolith.seed import seed_catalogue
from monolith.service_layer import catalog, commands
from monolith.service_layer import members as member_handlers
from monolith.service_layer import orders as order_handlers
from monolith.service_layer.unit_of_work import UnitOfWork


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    upgrade(engine)
    seed_catalogue(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def placed(engine) -> dict:
    member = member_handlers.signup(
        commands.Signup("a@example.com", "password-1", "A"), UnitOfWork(engine)
    ).body
    return order_handlers.place_order(
        commands.PlaceOrder(member["id"], [LineRequest(1, 2)]), UnitOfWork(engine)
    ).body


def test_placing_an_order_keeps_stock_plus_held_unchanged(engine):
    with engine.connect() as conn:
        before = invariants.stock_totals(conn)
    member = member_handlers.signup(
        commands.Signup("b@example.com", "password-1", "B"), UnitOfWork(engine)
    ).body
    order_handlers.place_order(
        commands.PlaceOrder(member["id"], [LineRequest(1, 2)]), UnitOfWork(engine)
    )
    with engine.connect() as conn:
        assert invariants.check_all(conn, before) == []


def test_stock_that_vanished_is_reported(engine, placed):
    with engine.begin() as conn:
        before = invariants.stock_totals(conn)
        conn.execute(products.update().where(products.c.id == 1).values(stock=products.c.stock - 1))
        assert invariants.stock_is_conserved(conn, before) == [
            f"product 1: stock + held was {before[1]}, is {before[1] - 1}"
        ]


def test_a_paid_order_without_a_payment_is_reported(engine, placed):
    with engine.begin() as conn:
        conn.execute(orders.update().values(status="PAID"))
        assert invariants.payments_match_orders(conn) == [
            f"order {placed['id']} is PAID but its payment is None"
        ]


def test_a_balance_that_disagrees_with_the_ledger_is_reported(engine, placed):
    with engine.begin() as conn:
        conn.execute(members.update().values(points=10))
        assert invariants.points_match_ledger(conn) == ["member 1: balance 10 != ledger 0"]


def test_an_order_total_that_disagrees_with_its_lines_is_reported(engine, placed):
    with engine.begin() as conn:
        conn.execute(orders.update().values(total=1))
        assert len(invariants.order_totals_match_lines(conn)) == 1


def test_stock_held_for_an_order_that_lives_elsewhere_is_counted(engine):
    """The order service's orders are not in this DB's orders, but their holds are."""
    with engine.connect() as conn:
        before = invariants.stock_totals(conn)
    with engine.begin() as conn:
        catalog.hold(conn, 5000, [LineRequest(1, 3)])
        assert invariants.stock_is_conserved(conn, before) == []
        catalog.release(conn, 5000)
        assert invariants.stock_is_conserved(conn, before) == []


def test_a_pending_order_is_left_out_of_the_order_invariants(engine, placed):
    """The order service commits a PENDING order before it holds its stock: no lines, no
    total, no events yet."""
    with engine.begin() as conn:
        conn.execute(
            orders.insert().values(
                member_id=placed["member_id"],
                status=PENDING,
                total=999,
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        )
        assert invariants.check_all(conn, invariants.stock_totals(conn)) == []
        assert invariants.shipments_match_orders(conn) == []


def _order(conn, oid: int, status: str) -> None:
    now = datetime.now(UTC)
    conn.execute(
        orders.insert().values(
            id=oid, member_id=3, status=status, total=0, created_at=now, updated_at=now
        )
    )


def test_holds_that_disagree_with_their_orders_are_reported(engine):
    with engine.begin() as conn:
        for oid, status in [(1, "PLACED"), (2, "PAID"), (3, "CANCELLED"), (4, "REFUNDED")]:
            _order(conn, oid, status)
        _order(conn, 5, PENDING)
        _order(conn, 6, PENDING)
        catalog.hold(conn, 2, [LineRequest(1, 1)])
        catalog.release(conn, 2)  # a paid order whose stock went back
        catalog.hold(conn, 3, [LineRequest(1, 1)])  # a cancelled order still holding
        catalog.release(conn, 4)
        catalog.hold(conn, 5, [LineRequest(1, 1)])  # pending, held: not placed in the end
        catalog.release(conn, 6)  # pending, gave up: fine
        catalog.hold(conn, 9, [LineRequest(1, 1)])  # no such order
        catalog.release(conn, 10)  # a tombstone of an order that was never placed: fine
        assert invariants.holds_match_orders(conn, conn) == [
            "order 1 is PLACED but its hold is None",
            "order 2 is PAID but its hold is released",
            "order 3 is CANCELLED but its hold is held",
            "order 5 is PENDING but its hold is held",
            "order 9 does not exist but its hold is held",
        ]


def test_holds_are_checked_against_orders_in_another_database(engine, tmp_path):
    """From the orders' cutover the orders live in the order DB, the holds stay here."""
    order_db = make_engine(f"sqlite:///{tmp_path / 'orders.db'}")
    upgrade(order_db)
    try:
        with order_db.begin() as orders_conn, engine.begin() as holds_conn:
            _order(orders_conn, 1, "PLACED")
            _order(orders_conn, 2, "CANCELLED")
            catalog.hold(holds_conn, 1, [LineRequest(1, 1)])
            catalog.release(holds_conn, 2)
            assert invariants.holds_match_orders(holds_conn, orders_conn) == []
            catalog.release(holds_conn, 1)
            assert invariants.holds_match_orders(holds_conn, orders_conn) == [
                "order 1 is PLACED but its hold is released"
            ]
    finally:
        order_db.dispose()
