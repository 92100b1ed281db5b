"""Orders: lines priced at the moment of ordering, and the status machine.

PLACED -> PAID -> REFUNDED, or PLACED -> CANCELLED. Stock is held for an order when it is placed
and released when it is cancelled or refunded (domain/holds.py)."""

from __future__ import annotations

from dataclasses import dataclass

from libs.errors import Conflict, Invalid

PLACED, PAID, CANCELLED, REFUNDED = "PLACED", "PAID", "CANCELLED", "REFUNDED"
HOLDS_STOCK = (PLACED, PAID)
# The order service's order while its stock is being held at the catalogue: in the shared-DB
# stages that row is in this legacy table before its hold is answered, and it becomes PLACED
# (or is deleted) right after. No one may see, pay or cancel it meanwhile, and no invariant
# counts it: its lines, total and events do not exist yet.
PENDING = "PENDING"
HIDDEN = (PENDING,)


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
