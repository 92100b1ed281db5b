from __future__ import annotations

import pytest

from libs.errors import Conflict, Invalid
from monolith.domain import orders
from services.payment.domain import payments


def test_an_order_total_is_the_sum_of_its_lines():
    lines = [orders.PricedLine(1, "tee", 29000, 2), orders.PricedLine(2, "cap", 35000, 1)]
    assert orders.total(lines) == 93000


def test_a_product_may_appear_once_per_order():
    with pytest.raises(Invalid):
        orders.check_lines([orders.LineRequest(1, 1), orders.LineRequest(1, 2)])


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("PAID", "ORDER_PAID"),
        ("CANCELLED", "ORDER_NOT_CANCELLABLE"),
        ("REFUNDED", "ORDER_NOT_CANCELLABLE"),
    ],
)
def test_only_a_placed_order_can_be_cancelled(status, code):
    orders.ensure_cancellable("PLACED")
    with pytest.raises(Conflict) as caught:
        orders.ensure_cancellable(status)
    assert caught.value.code == code


def test_card_payments_earn_one_percent_rounded_down_and_points_payments_earn_nothing():
    assert payments.points_earned("card", 29_999) == 299
    assert payments.points_earned("points", 29_999) == 0
    assert payments.points_spent("points", 29_999) == 29_999


def test_points_cannot_go_below_zero():
    payments.ensure_can_spend(100, 100)
    with pytest.raises(Conflict):
        payments.ensure_can_spend(99, 100)
    with pytest.raises(Conflict):
        payments.ensure_can_take_back(10, 11)
