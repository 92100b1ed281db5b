"""The invariant checks must catch what they claim to catch."""

from __future__ import annotations

import pytest

from libs.db import make_engine
from monolith import invariants
from monolith.adapters.migrate import upgrade
from monolith.adapters.tables import members, orders, products
from monolith.domain.orders import LineRequest
from monolith.seed import seed_catalogue
from monolith.service_layer import commands
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
    )
    return order_handlers.place_order(
        commands.PlaceOrder(member["id"], [LineRequest(1, 2)]), UnitOfWork(engine)
    )


def test_placing_an_order_keeps_stock_plus_held_unchanged(engine):
    with engine.connect() as conn:
        before = invariants.stock_totals(conn)
    member = member_handlers.signup(
        commands.Signup("b@example.com", "password-1", "B"), UnitOfWork(engine)
    )
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
