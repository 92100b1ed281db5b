"""Orders: lines priced at the moment of ordering, and the status machine.

    PENDING --(stock held)--> PLACED --> PAID --> REFUNDED
       |                        |
       |                        +--> CANCELLED (by the member, or expired unpaid)
       +--(refused: nothing held)--> the row is deleted
       +--(failed, or left by a dead process)--> VOIDING --(hold released)--> VOID

PENDING, VOIDING and VOID are the order service's own (services/order/service_layer/
orders.py): a PENDING order exists only while its stock is being held at the catalogue (its
id keys that hold), a VOIDING one is having its hold released, a VOID one holds nothing (the
catalogue keeps a released tombstone for its id). None of them is shown, nor announced."""

from __future__ import annotations

from dataclasses import dataclass

from libs.errors import Conflict, Invalid

PENDING, PLACED, PAID, CANCELLED, REFUNDED, VOIDING, VOID = (
    "PENDING", "PLACED", "PAID", "CANCELLED", "REFUNDED", "VOIDING", "VOID",
)  # fmt: skip
HOLDS_STOCK = (PLACED, PAID)
HIDDEN = (PENDING, VOIDING, VOID)


@dataclass(frozen=True)
class LineRequest:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class PricedLine:
    product_id: int
    name: str
    unit_price: int
    quantity: int

    @property
    def amount(self) -> int:
        return self.unit_price * self.quantity


def check_lines(lines: list[LineRequest]) -> None:
    ids = [line.product_id for line in lines]
    if len(ids) != len(set(ids)):
        raise Invalid("DUPLICATE_PRODUCT", "Each product may appear only once in an order.")


def total(lines: list[PricedLine]) -> int:
    return sum(line.amount for line in lines)


def ensure_cancellable(status: str) -> None:
    if status == PAID:
        raise Conflict("ORDER_PAID", "The order is paid: refund its payment to cancel it.")
    if status != PLACED:
        raise Conflict("ORDER_NOT_CANCELLABLE", f"An order that is {status} cannot be cancelled.")


def ensure_payable(status: str) -> None:
    if status == PAID:
        raise Conflict("ORDER_ALREADY_PAID", "The order is already paid.")
    if status != PLACED:
        raise Conflict("ORDER_NOT_PAYABLE", f"An order that is {status} cannot be paid.")
