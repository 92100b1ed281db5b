"""The payment events (`shop.payments`, keyed by the payment's id; docs/contracts.md), built the
same way by whoever takes payments: the monolith, then the payment service. A payment's
sequence follows from what happened to it (completed 1, refunded 2), not from an outbox's
count: its events may be written to two outboxes (see services/order/events.py)."""

from __future__ import annotations

from typing import Any

from libs.events.envelope import Event

TOPIC = "shop.payments"
AGGREGATE = "payment"
_FIELDS = ("order_id", "member_id", "amount", "method", "status", "points_earned", "points_spent")


def payment_completed(payment: dict[str, Any], spend_key: str | None) -> Event:
    """`spend_key`: the debit a points payment used at the member service, so it can name
    the payment on that debit's ledger line."""
    return _event("PaymentCompleted", 1, payment, {"points_spend_key": spend_key})


def payment_refunded(payment: dict[str, Any], take_back_key: str | None) -> Event:
    return _event("PaymentRefunded", 2, payment, {"points_take_back_key": take_back_key})


def _event(kind: str, sequence: int, payment: dict[str, Any], extra: dict[str, Any]) -> Event:
    data = {"payment_id": payment["id"]} | {name: payment[name] for name in _FIELDS} | extra
    return Event(kind, AGGREGATE, str(payment["id"]), sequence, data)
