"""The relay and the writers of its SQLite outbox, against both brokers: its reads take no
write lock, and a steady stream of write transactions does not starve it of the lock it needs
to mark a batch (SQLite's busy handler would: docs/events.md "Measured")."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from libs.events.envelope import parse
from libs.events.relay import Relay
from tests.support.kafka_clients import consume, until

from .conftest import TOPIC_PARTITIONS, OutboxDb

AGGREGATES = ["m-1", "m-2", "m-3", "m-4"]


async def test_a_unit_of_work_holding_the_write_lock_does_not_hold_back_the_send(
    sqlite_outbox_db: OutboxDb, new_topic, bootstrap, make_consumer, registry
):
    db = sqlite_outbox_db
    topic = await new_topic("members", TOPIC_PARTITIONS)
    committed = db.write(topic, "m-1")
    relay = Relay(db.engine, db.outbox, bootstrap, registry=registry)
    consumer = make_consumer(topic)
    await consumer.start()
    try:
        with db.engine.connect() as writer:
            in_progress = writer.begin()  # BEGIN IMMEDIATE: the file's write lock, held
            writer.execute(db.members.insert().values(member_id="m-2"))
            await relay.start()
            # The relay reads under a shared lock, so the committed event goes out now; only
            # its mark waits for the write lock.
            received = await consume(consumer, 1, within=5.0)
            marked_before_commit = _sample(registry, "shop_outbox_published_total")
            in_progress.commit()
        await until(lambda: _sample(registry, "shop_outbox_published_total") == 1)
    finally:
        await relay.stop()
        await consumer.stop()
    assert [parse(record.value).id for record in received] == [committed.id]
    assert not marked_before_commit
    assert all(row.published_at is not None for row in db.rows())


async def test_a_stream_of_write_transactions_does_not_starve_the_relay(
    sqlite_outbox_db: OutboxDb, new_topic, bootstrap, registry
):
    db = sqlite_outbox_db
    topic = await new_topic("members", TOPIC_PARTITIONS)
    written = db.write_interleaved(topic, AGGREGATES, each=5)
    relay = Relay(db.engine, db.outbox, bootstrap, batch_size=5, registry=registry)
    # The lock is free two milliseconds in every 102: SQLite's busy handler, sleeping up to
    # 100 ms between tries, nearly always wakes while it is held (seconds per batch).
    with _writers_holding_the_lock(db, hold=0.100, gap=0.002):
        began = time.monotonic()
        await relay.start()
        try:
            await until(lambda: _sample(registry, "shop_outbox_published_total") == 20)
            took = time.monotonic() - began
        finally:
            await relay.stop()
    assert len(written) == 20
    assert all(row.published_at is not None for row in db.rows())
    assert took < 3.0  # four reads and four marks, each in a gap between writers


@contextmanager
def _writers_holding_the_lock(db: OutboxDb, *, hold: float, gap: float) -> Iterator[None]:
    """Back-to-back write transactions in a thread, each holding the write lock for `hold`
    seconds, `gap` seconds apart (a busy process's units of work, without their fsync)."""
    stop = threading.Event()

    def write() -> None:
        with db.engine.connect() as conn:
            while not stop.is_set():
                with conn.begin():  # BEGIN IMMEDIATE
                    time.sleep(hold)
                time.sleep(gap)

    thread = threading.Thread(target=write, name="writers")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _sample(registry, name: str) -> float | None:
    return registry.get_sample_value(name, {"process": ""})
