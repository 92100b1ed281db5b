"""The outbox on SQLite and PostgreSQL: an event row commits or rolls back with the state change
it announces, and only committed events reach the broker, once."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from libs.events.envelope import Event, parse
from libs.events.relay import Relay
from tests.support.kafka_clients import until

from .conftest import TOPIC_PARTITIONS, OutboxDb


def test_next_sequence_counts_on_from_what_the_transaction_sees(outbox_db: OutboxDb):
    outbox = outbox_db.outbox
    with outbox_db.engine.connect() as conn, conn.begin():
        first = outbox.next_sequence(conn, "member", "m-1")
        outbox.add(conn, "shop.members", Event("MemberJoined", "member", "m-1", first, {}))
        second = outbox.next_sequence(conn, "member", "m-1")
        other = outbox.next_sequence(conn, "order", "m-1")
    assert (first, second, other) == (1, 2, 1)


def test_a_second_writer_cannot_claim_a_sequence_number_already_committed(outbox_db: OutboxDb):
    outbox = outbox_db.outbox
    with outbox_db.engine.connect() as late:
        with late.begin():
            stale = outbox.next_sequence(late, "member", "m-1")
        outbox_db.write("shop.members", "m-1")  # commits sequence 1 in between
        with pytest.raises(sa.exc.IntegrityError), late.begin():
            outbox.add(late, "shop.members", Event("MemberLeft", "member", "m-1", stale, {}))
    assert [row.type for row in outbox_db.rows()] == ["MemberJoined"]


async def test_a_rolled_back_transaction_leaves_no_row_and_nothing_is_published(
    outbox_db: OutboxDb, new_topic, bootstrap, read_topic, registry
):
    topic = await new_topic("members", TOPIC_PARTITIONS)
    outbox_db.write(topic, "m-rolled-back", commit=False)
    relay = Relay(outbox_db.engine, outbox_db.outbox, bootstrap, registry=registry)
    await relay.start()
    try:
        committed = outbox_db.write(topic, "m-committed")
        relay.notify()
        await until(lambda: all(row.published_at for row in outbox_db.rows()))
    finally:
        await relay.stop()
    with outbox_db.engine.connect() as conn:
        members = conn.scalars(sa.select(outbox_db.members.c.member_id)).all()
    received = await read_topic(topic)
    assert members == ["m-committed"]
    assert [parse(record.value).id for record in received] == [committed.id]


async def test_a_committed_event_is_published_exactly_once(
    outbox_db: OutboxDb, new_topic, bootstrap, read_topic, registry
):
    topic = await new_topic("members", TOPIC_PARTITIONS)
    event = outbox_db.write(topic, "m-1")
    relay = Relay(
        outbox_db.engine, outbox_db.outbox, bootstrap, poll_interval=0.02, registry=registry
    )
    await relay.start()
    try:
        await until(lambda: outbox_db.rows()[0].published_at is not None)
        published_at = outbox_db.rows()[0].published_at
        await until(lambda: _sample(registry, "shop_outbox_published_total") == 1)
        await asyncio.sleep(0.3)  # some fifteen more polls: none may send the row again
    finally:
        await relay.stop()
    received = await read_topic(topic)
    assert [parse(record.value) for record in received] == [event]
    assert outbox_db.rows()[0].published_at == published_at
    assert _sample(registry, "shop_outbox_published_total") == 1


def _sample(registry, name: str) -> float | None:
    return registry.get_sample_value(name, {"process": ""})
