"""Order handlers. Every change is a transaction through `ExtractionData` (its data mode picks
the DB), and every status change writes its event (services/order/events.py) in that same
transaction.

Placing an order holds its stock at the catalogue's owner, a call to another process, so it
is a saga of three steps, each undone by the next one's failure:

    1. the order is written PENDING and committed: its id is the key of the hold;
    2. the catalogue holds the stock for that id (idempotent: a repeat holds nothing more);
    3. the order becomes PLACED with its priced lines, and OrderPlaced is written with it.

    step 2 refused (out of stock)       -> the PENDING row is deleted: nothing was held
    step 2's answer lost, step 3 failed -> the order becomes VOIDING, its hold is released
                                           (the catalogue keeps a tombstone, so a late hold
                                           refuses), then it is VOID
    the process died between the steps  -> the recovery finds the order still PENDING once
                                           no request can still be working on it, and does
                                           the same; a release that failed leaves the order
                                           VOIDING, which the recovery retries every round

Step 3 and the give-up both move the order only from PENDING, so exactly one of them wins: a
placed order's hold is never released, a voided order's stock always is.

A placement with an Idempotency-Key is looked up before step 1 and its answer kept under the
key in step 3's transaction: a retry (the same key and lines) answers the first placement
again; the same key with other lines is refused (IDEMPOTENCY_KEY_REUSED). The keys are a
table of the orders' migration, so they live wherever the orders do.

A cancelled, expired or refunded order's stock goes back by its event: the catalogue
consumes OrderCancelled and OrderRefunded and releases the hold (monolith, catalog.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from libs import idempotency
from libs.dualwrite import Mode, WriteTransaction
from libs.errors import Conflict, DomainError, Invalid, NotFound, Unavailable
from libs.events.envelope import Event
from libs.events.outbox import Outbox
from libs.extraction import ExtractionData, Reads
from libs.idempotency import DoorKeys, Outcome
from services.order import events
from services.order.adapters.tables import event_outbox
from services.order.catalogue import CatalogueClient
from services.order.domain import orders as domain
from services.order.service_layer import commands

log = logging.getLogger(__name__)
outbox = Outbox(event_outbox)
LINE_FIELDS = ("product_id", "name", "unit_price", "quantity")


def place_order(
    cmd: commands.PlaceOrder, data: ExtractionData, catalogue: CatalogueClient
) -> Outcome:
    domain.check_lines(cmd.lines)
    earlier = _earlier(cmd, data)
    if earlier is not None:
        return earlier
    try:
        return _place_once(cmd, data, catalogue)
    except sa.exc.IntegrityError:
        # A concurrent retry with the same key placed first (its key row won); this attempt's
        # order was given up. Without a key the error is not ours to explain.
        earlier = _earlier(cmd, data)
        if earlier is None:
            raise
        return earlier


def _earlier(cmd: commands.PlaceOrder, data: ExtractionData) -> Outcome | None:
    if cmd.idempotency_key is None:
        return None
    with data.reading() as tx:
        return idempotency.replay(
            DoorKeys(tx, "order_idempotency_keys"),
            cmd.member_id,
            cmd.idempotency_key,
            commands.PLACE_ORDER,
            cmd.request_hash(),
        )


def _place_once(
    cmd: commands.PlaceOrder, data: ExtractionData, catalogue: CatalogueClient
) -> Outcome:
    order_id = _write_pending(data, cmd.member_id)
    try:
        hold = catalogue.hold(order_id, cmd.lines)
    except (NotFound, Conflict, Invalid):
        _refused(data, order_id)
        raise
    except BaseException:
        _give_up(data, catalogue, order_id)
        raise
    try:
        return _place(data, order_id, cmd, hold.lines)
    except BaseException:
        _give_up(data, catalogue, order_id)
        raise


def cancel_order(cmd: commands.CancelOrder, data: ExtractionData) -> dict[str, Any]:
    with data.writing() as tx:
        order = load(tx, cmd.order_id, cmd.member_id, lock=True)
        domain.ensure_cancellable(order["status"])
        _change_status(data, tx, order, domain.CANCELLED)
        return load(tx, cmd.order_id, cmd.member_id)


def get_order(order_id: int, member_id: int, data: ExtractionData) -> dict[str, Any]:
    with data.reading() as tx:
        return load(tx, order_id, member_id)


def list_orders(member_id: int, data: ExtractionData, limit: int, offset: int) -> dict[str, Any]:
    with data.reading() as tx:
        ids = tx.read(
            "orders",
            lambda t: (
                sa.select(t.c.id)
                .where(t.c.member_id == member_id, t.c.status.not_in(domain.HIDDEN))
                .order_by(t.c.id.desc())
                .limit(limit)
                .offset(offset)
            ),
        ).scalars()
        items = [load(tx, order_id, member_id) for order_id in ids.all()]
    return {"items": items, "limit": limit, "offset": offset}


def load(tx: Reads, order_id: int, member_id: int, lock: bool = False) -> dict[str, Any]:
    """An order of this member; someone else's order, or one not placed yet, is reported as
    missing, not forbidden, so ids cannot be probed."""

    def select(t: sa.Table) -> sa.Select:
        query = sa.select(t).where(
            t.c.id == order_id, t.c.member_id == member_id, t.c.status.not_in(domain.HIDDEN)
        )
        return query.with_for_update() if lock else query

    row = tx.read("orders", select).mappings().first()
    if row is None:
        raise NotFound("ORDER_NOT_FOUND", f"Order {order_id} does not exist.")
    lines = (
        tx.read(
            "order_lines",
            lambda t: (
                sa.select(*(t.c[name] for name in LINE_FIELDS))
                .where(t.c.order_id == order_id)
                .order_by(t.c.id)
            ),
        )
        .mappings()
        .all()
    )
    return {
        **dict(row),
        "lines": [{**line, "amount": line["unit_price"] * line["quantity"]} for line in lines],
    }


# --- the payment events: an order is paid, and refunded, when its payment says so ---


class OrderNotPayable(DomainError):
    """A payment completed for an order that was cancelled meanwhile: parked for a person to
    refund (the payment service never pays an order it did not see PLACED, so only a cancel
    racing the payment gets here)."""

    status = 409


def apply_payment_event(event: Event, data: ExtractionData) -> bool:
    """PaymentCompleted makes a PLACED order PAID, PaymentRefunded a PAID one REFUNDED, each
    with its event. Keyed by the order's status: a redelivered event, or one for a change the
    monolith made itself in the same transaction as its payment, finds the order already there
    and changes nothing (returns False); a refund that overtakes its payment applies both."""
    transitions = {
        "PaymentCompleted": (domain.PLACED, domain.PAID),
        "PaymentRefunded": (domain.PAID, domain.REFUNDED),
    }
    if event.type not in transitions:
        return False
    before, after = transitions[event.type]
    order_id, member_id = event.count("order_id"), event.count("member_id")
    payment_id = event.count("payment_id")
    with data.writing() as tx:
        try:
            order = load(tx, order_id, member_id, lock=True)
        except NotFound:
            raise OrderNotPayable(
                "ORDER_NOT_FOUND", f"{event.type} names order {order_id}, which does not exist"
            ) from None
        done = (after, domain.REFUNDED) if after == domain.PAID else (after,)
        if order["status"] in done:
            return False  # already applied (here, or by the monolith with its payment)
        if after == domain.REFUNDED and order["status"] == domain.PLACED:
            # Its PaymentCompleted is still on its way: a payment's two events can come
            # through two outboxes (captured while the payment service shared the legacy DB,
            # refunded after its dual write began), whose relays keep no order between them.
            # A refund implies the payment: apply both, and the late event changes nothing.
            _change_status(data, tx, order, domain.PAID, payment_id)
            order = order | {"status": domain.PAID}
        elif order["status"] != before:
            raise OrderNotPayable(
                "ORDER_NOT_PAYABLE",
                f"{event.type} of payment {payment_id} for order {order_id}, which is "
                f"{order['status']}: refund the payment",
            )
        _change_status(data, tx, order, after, payment_id)
        return True


# --- the recovery: what a dead request or an unpaid order left behind ---


def recover(
    data: ExtractionData, catalogue: CatalogueClient, *, stale_after: float, expire_after: float
) -> dict[str, int]:
    """Voids the orders left PENDING for longer than any request takes (releasing their hold
    first), and, once the order service owns orders (dual write on), cancels the orders left
    unpaid for `expire_after` seconds (their event releases the stock). While it shares the
    legacy DB the monolith still owns orders, and its rules stand: it never expired one.
    Returns how many of each."""
    now = datetime.now(UTC)
    stale = _ids(data, domain.PENDING, now - timedelta(seconds=stale_after))
    for order_id in stale:
        _give_up(data, catalogue, order_id)
    # A give-up in flight moved its order to VOIDING a moment ago: retry only older ones.
    for order_id in _ids(data, domain.VOIDING, now - timedelta(seconds=1)):
        _release(data, catalogue, order_id)
    if data.mode is Mode.SHARED:
        return {"voided": len(stale), "expired": 0}
    expired = _ids(data, domain.PLACED, now - timedelta(seconds=expire_after))
    cancelled = 0
    for order_id in expired:
        with data.writing() as tx:
            order = _locked(tx, order_id)
            if order is not None and order["status"] == domain.PLACED:
                _change_status(data, tx, order, domain.CANCELLED)
                cancelled += 1
    return {"voided": len(stale), "expired": cancelled}


def _ids(data: ExtractionData, status: str, before: datetime, limit: int = 200) -> list[int]:
    with data.reading() as tx:
        return list(
            tx.read(
                "orders",
                lambda t: (
                    sa.select(t.c.id)
                    .where(t.c.status == status, t.c.updated_at < before)
                    .order_by(t.c.id)
                    .limit(limit)
                ),
            ).scalars()
        )


def _locked(tx: Reads, order_id: int) -> dict[str, Any] | None:
    row = (
        tx.read("orders", lambda t: sa.select(t).where(t.c.id == order_id).with_for_update())
        .mappings()
        .first()
    )
    if row is None:
        return None
    return dict(row) | {"lines": []}


# --- the saga's steps ---


def _write_pending(data: ExtractionData, member_id: int) -> int:
    now = datetime.now(UTC)
    values = {"member_id": member_id, "status": domain.PENDING, "total": 0}
    with data.writing() as tx:
        inserted = tx.write(
            "orders", lambda t: t.insert().values(**values, created_at=now, updated_at=now)
        ).inserted_primary_key
    assert inserted is not None  # a single-row insert always has its key
    return inserted[0]


def _place(
    data: ExtractionData, order_id: int, cmd: commands.PlaceOrder, lines: list[domain.PricedLine]
) -> Outcome:
    member_id, now = cmd.member_id, datetime.now(UTC)
    with data.writing() as tx:
        placed = tx.write(
            "orders",
            lambda t: (
                t.update()
                .where(t.c.id == order_id, t.c.status == domain.PENDING)
                .values(status=domain.PLACED, total=domain.total(lines), updated_at=now)
            ),
        )
        if placed.rowcount != 1:  # the recovery found it stale and is releasing its stock
            raise Unavailable("ORDER_EXPIRED", "Placing the order took too long; order again.")
        for line in lines:  # one row at a time: dual write copies each generated key
            tx.write("order_lines", _line_insert(order_id, line))
        order = load(tx, order_id, member_id)
        data.announce(tx, outbox, events.TOPIC, events.order_placed(order))
        outcome = Outcome(201, idempotency.jsonable(order))
        key, request_hash = cmd.idempotency_key, cmd.request_hash()
        idempotency.remember(
            DoorKeys(tx, "order_idempotency_keys"),
            member_id,
            key,
            commands.PLACE_ORDER,
            request_hash,
            outcome,
        )
        return outcome


def _line_insert(order_id: int, line: domain.PricedLine) -> Callable[[sa.Table], sa.Insert]:
    values = {"order_id": order_id} | {k: getattr(line, k) for k in LINE_FIELDS}
    return lambda t: t.insert().values(**values)


def _change_status(
    data: ExtractionData,
    tx: WriteTransaction,
    order: dict[str, Any],
    status: str,
    payment_id: int | None = None,
) -> None:
    now = datetime.now(UTC)
    tx.write(
        "orders",
        lambda t: t.update().where(t.c.id == order["id"]).values(status=status, updated_at=now),
    )
    data.announce(tx, outbox, events.TOPIC, events.status_changed(order, status, payment_id))


def _void(data: ExtractionData, order_id: int, before: str = domain.PENDING) -> bool:
    """A given-up order's row is kept: the catalogue remembers releasing that id (its
    tombstone), and SQLite may hand a deleted row's id out again."""
    after = domain.VOIDING if before == domain.PENDING else domain.VOID
    now = datetime.now(UTC)
    with data.writing() as tx:
        moved = tx.write(
            "orders",
            lambda t: (
                t.update()
                .where(t.c.id == order_id, t.c.status == before)
                .values(status=after, updated_at=now)
            ),
        )
    return moved.rowcount == 1


def _refused(data: ExtractionData, order_id: int) -> None:
    """The catalogue refused the hold: it held nothing and remembers nothing for this id, so
    the PENDING row goes, and the refused request has changed nothing at all."""
    with data.writing() as tx:
        tx.write(
            "orders",
            lambda t: t.delete().where(t.c.id == order_id, t.c.status == domain.PENDING),
        )


def _give_up(data: ExtractionData, catalogue: CatalogueClient, order_id: int) -> None:
    """Moves an unfinished order to VOIDING (unless step 3 placed it meanwhile), releases its
    hold, then voids it. Never raises: a release that fails stays VOIDING for the recovery."""
    try:
        if _void(data, order_id):
            _release(data, catalogue, order_id)
    except Exception:
        log.exception("order %s: giving it up failed, the recovery retries it", order_id)


def _release(data: ExtractionData, catalogue: CatalogueClient, order_id: int) -> None:
    try:
        catalogue.release(order_id)
        _void(data, order_id, domain.VOIDING)
    except Exception:
        log.exception("order %s: releasing its stock failed, the recovery retries it", order_id)
