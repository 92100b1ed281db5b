"""The order domain the monolith runs: the order service's own rules and status machine
(services/order/domain/orders.py), so an order reads the same on both sides while the gateway
splits the order routes between them. Stock is held for an order when it is placed and
released when it is cancelled or refunded (domain/holds.py).

The order service's PENDING, VOIDING and VOID orders (`HIDDEN`) may be in the legacy table in
the shared-DB stages: no one may see, pay or cancel them here, and no invariant counts them."""

from services.order.domain.orders import (
    CANCELLED,
    HIDDEN,
    HOLDS_STOCK,
    PAID,
    PENDING,
    PLACED,
    REFUNDED,
    VOID,
    VOIDING,
    LineRequest,
    PricedLine,
    check_lines,
    ensure_cancellable,
    ensure_payable,
    total,
)

__all__ = [
    "CANCELLED",
    "HIDDEN",
    "HOLDS_STOCK",
    "PAID",
    "PENDING",
    "PLACED",
    "REFUNDED",
    "VOID",
    "VOIDING",
    "LineRequest",
    "PricedLine",
    "check_lines",
    "ensure_cancellable",
    "ensure_payable",
    "total",
]
