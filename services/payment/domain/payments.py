"""Payments and points. A card payment earns points; a points payment spends them; a refund
reverses whichever happened."""

from __future__ import annotations

from libs.errors import Conflict

CARD, POINTS = "card", "points"
CAPTURED, REFUNDED = "CAPTURED", "REFUNDED"
POINTS_RATE_PERCENT = 1


def points_earned(method: str, amount: int) -> int:
    return amount * POINTS_RATE_PERCENT // 100 if method == CARD else 0


def points_spent(method: str, amount: int) -> int:
    return amount if method == POINTS else 0


def ensure_can_spend(balance: int, amount: int) -> None:
    if balance < amount:
        raise Conflict(
            "INSUFFICIENT_POINTS", f"The balance is {balance} points; {amount} are needed."
        )


def ensure_refundable(status: str) -> None:
    if status != CAPTURED:
        raise Conflict("PAYMENT_NOT_REFUNDABLE", f"A payment that is {status} cannot be refunded.")


def ensure_can_take_back(balance: int, earned: int) -> None:
    if balance < earned:
        raise Conflict(
            "POINTS_ALREADY_SPENT",
            f"The payment earned {earned} points but the balance is {balance}: "
            "they were spent, so it cannot be refunded.",
        )
