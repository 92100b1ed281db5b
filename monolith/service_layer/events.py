"""The payments' events (`shop.payments`, docs/contracts.md): written to the outbox in the
payment's own transaction, so an event exists exactly when its payment does, and published
by the relay after the commit. Keyed by the payment's id; its sequence counts the payment's
events (1 completed, 2 refunded)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from libs.events.envelope import Event
from libs.events.outbox import Outbox
from monolith.adapters.tables import event_outbox

PAYMENTS_TOPIC = "shop.payments"
outbox = Outbox(event_outbox)

_FIELDS = ("order_id", "member_id", "amount", "method", "status", "points_earned", "points_spent")


def payment_completed(conn: sa.Connection, payment: dict[str, Any], spend_key: str | None) -> None:
    """`spend_key`: the debit a points payment used at the member service, so it can name
    the payment on that debit's ledger line."""
    _add(conn, "PaymentCompleted", payment, {"points_spend_key": spend_key})


def payment_refunded(
    conn: sa.Connection, payment: dict[str, Any], take_back_key: str | None
) -> None:
    _add(conn, "PaymentRefunded", payment, {"points_take_back_key": take_back_key})


def _add(conn: sa.Connection, kind: str, payment: dict[str, Any], extra: dict[str, Any]) -> None:
    aggregate_id = str(payment["id"])
    data = {"payment_id": payment["id"]} | {name: payment[name] for name in _FIELDS} | extra
    sequence = outbox.next_sequence(conn, "payment", aggregate_id)
    outbox.add(conn, PAYMENTS_TOPIC, Event(kind, "payment", aggregate_id, sequence, data))
