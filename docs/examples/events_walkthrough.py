"""libs/events end to end on the embedded default: a state change and its event committed in
one transaction, the relay publishing it, a consumer group applying it once through its inbox,
and a poison message parked while the partition moves on.

    .venv/bin/shop broker &                  # or SHOP_KAFKA_BOOTSTRAP=... for another Kafka
    .venv/bin/python docs/examples/events_walkthrough.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, generate_latest

from libs.db import make_engine
from libs.events.consumer import ConsumerRunner
from libs.events.envelope import Event
from libs.events.inbox import Inbox, inbox_tables
from libs.events.outbox import Outbox, outbox_table
from libs.events.relay import Relay

BOOTSTRAP = os.environ.get("SHOP_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
TOPIC = f"shop.payments.walkthrough-{uuid.uuid4().hex[:6]}"


async def main() -> None:
    workdir = tempfile.mkdtemp(prefix="events-")
    registry = CollectorRegistry()

    # The payment side: its own DB holds payments and the outbox.
    pay_meta = sa.MetaData()
    payments = sa.Table("payments", pay_meta, sa.Column("id", sa.String, primary_key=True))
    outbox = Outbox(outbox_table(pay_meta))
    pay_db = make_engine(f"sqlite:///{workdir}/payment.db")
    pay_meta.create_all(pay_db)

    # The member side: its own DB holds points and the inbox.
    mem_meta = sa.MetaData()
    points = sa.Table("points", mem_meta, sa.Column("payment_id", sa.String, primary_key=True))
    inbox = Inbox(inbox_tables(mem_meta))
    mem_db = make_engine(f"sqlite:///{workdir}/member.db")
    mem_meta.create_all(mem_db)

    def capture(payment_id: str, *, fail: bool = False) -> None:
        """One unit of work: the payment row and its PaymentCompleted commit together."""
        with pay_db.begin() as conn:
            conn.execute(payments.insert().values(id=payment_id))
            sequence = outbox.next_sequence(conn, "payment", payment_id)
            event = Event("PaymentCompleted", "payment", payment_id, sequence, {"points": 120})
            outbox.add(conn, TOPIC, event)
            if fail:
                raise RuntimeError("card declined after the insert")

    def earn_points(conn: sa.Connection, event: Event) -> None:
        conn.execute(points.insert().values(payment_id=event.aggregate_id))

    capture("pay-1")
    capture("pay-2")
    try:
        capture("pay-3", fail=True)
    except RuntimeError:
        print("pay-3 rolled back: its event was never committed either")

    relay = Relay(pay_db, outbox, BOOTSTRAP, process="payment", registry=registry)
    runner = ConsumerRunner(
        BOOTSTRAP, "member-points", [TOPIC], mem_db, inbox, earn_points, registry=registry
    )
    await relay.start()
    await runner.start()
    try:
        # The same event again (a relay that crashed before marking its batch) and a message
        # that is not an event at all.
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
        await producer.start()
        try:
            with pay_db.connect() as conn:
                payload = conn.execute(sa.select(outbox.table.c.payload)).scalars().first()
            await producer.send_and_wait(TOPIC, payload, key=b"pay-1")
            await producer.send_and_wait(TOPIC, b"{not an event", key=b"pay-1")
        finally:
            await producer.stop()
        await until_counted(registry, 4)
    finally:
        await runner.stop()
        await relay.stop()

    with mem_db.connect() as conn:
        earned = conn.execute(sa.select(points.c.payment_id)).scalars().all()
        parked = inbox.parked_events(conn)
    print(f"points earned for: {sorted(earned)}")
    for event in parked:
        print(f"parked #{event.id} at {event.partition}@{event.offset}: {event.reason}")
    print("\n".join(metric_lines(registry)))


async def until_counted(registry: CollectorRegistry, count: int) -> None:
    """Until the consumer has handled `count` messages, whatever their outcome."""
    async with asyncio.timeout(30):
        while sum(_outcomes(registry).values()) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def _outcomes(registry: CollectorRegistry) -> dict[str, float]:
    value = registry.get_sample_value
    names = ("processed", "duplicate", "parked")
    labels = {"group": "member-points"}
    return {n: value("shop_consumer_events_total", {**labels, "outcome": n}) or 0 for n in names}


def metric_lines(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    wanted = ("shop_consumer_events_total{", "shop_outbox_backlog{", "shop_outbox_published_total{")
    return [line for line in text.splitlines() if line.startswith(wanted)]


if __name__ == "__main__":
    asyncio.run(main())
