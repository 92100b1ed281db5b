"""`shop scenario ordering`: Kafka keeps order per partition, not per topic (the talk's
"message ordering" lesson).

The same order-status events (every order's statuses, numbered by the envelope's per-aggregate
`sequence`) go out twice onto a topic of several partitions: once without a key, each event on
a random partition the way a keyless producer spreads them, and once through the outbox and
relay, keyed by aggregate id. Each time a consumer group that starts late (the whole topic is
its lag) applies them, and every application of a sequence lower than one already applied for
that order is counted as out of order."""

from __future__ import annotations

import asyncio
import random
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from infra.scenarios import until
from infra.scenarios.table import print_table
from libs.db import make_engine
from libs.events.envelope import Event, parse
from libs.events.outbox import Outbox, outbox_table
from libs.events.relay import Relay
from libs.events.topics import create_topics

DESCRIPTION = (
    "per-aggregate order across partitions: events published without a key vs keyed by "
    "aggregate id (outbox + relay), applied by a lagging consumer group"
)

ORDERS = 50
STATUSES = (
    "OrderPlaced", "OrderConfirmed", "OrderPaid", "OrderPicked", "OrderPacked",
    "OrderLabelled", "OrderShipped", "OrderArrived", "OrderDelivered", "OrderReviewed",
)  # fmt: skip
PARTITIONS = 6
CONSUMERS = 3
# Small fetches and a pause per batch: slow consumers, so each one works through its backlog
# over many batches while the others work through theirs.
MAX_RECORDS = 20
PAUSE_PER_BATCH = 0.005
WITHIN = 30.0  # a bound on each wait, far above a normal run, so the scenario always ends
# The broker default for group.min.session.timeout.ms is 6 s; heartbeats every 100 ms make
# the group's joins settle in a fraction of a second.
GROUP_TIMINGS = {"session_timeout_ms": 10_000, "heartbeat_interval_ms": 100}

Publish = Callable[[str, str, list[Event]], Awaitable[None]]


@dataclass
class Applications:
    """What the group applied, in the order it applied it (one event loop: no races)."""

    highest: dict[str, int] = field(default_factory=dict)
    partitions: dict[str, set[int]] = field(default_factory=dict)
    applied: int = 0
    out_of_order: int = 0
    affected: set[str] = field(default_factory=set)

    def apply(self, event: Event, partition: int) -> None:
        self.applied += 1
        self.partitions.setdefault(event.aggregate_id, set()).add(partition)
        highest = self.highest.get(event.aggregate_id, 0)
        if event.sequence < highest:  # an older status lands after a newer one
            self.out_of_order += 1
            self.affected.add(event.aggregate_id)
        self.highest[event.aggregate_id] = max(highest, event.sequence)

    def most_partitions(self) -> int:
        """How many partitions the most scattered order's events were spread over."""
        return max((len(seen) for seen in self.partitions.values()), default=0)


def order_events() -> list[Event]:
    """Every order's statuses in the order they happened: first every order placed, then
    every order confirmed, and so on, as a busy shop interleaves them."""
    ids = [f"order-{number:03d}" for number in range(1, ORDERS + 1)]
    return [
        Event(status, "order", order, sequence, {"status": status})
        for sequence, status in enumerate(STATUSES, start=1)
        for order in ids
    ]


async def publish_unkeyed(bootstrap: str, topic: str, events: list[Event]) -> None:
    """No key: each event on a random partition, so one order's statuses scatter."""
    choose = random.Random()
    # Idempotent like the relay's, so a retried send (a topic that has no leader yet) cannot
    # reorder a partition: the key is the only difference between the two runs.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        sends = [
            await producer.send(topic, event.to_bytes(), partition=choose.randrange(PARTITIONS))
            for event in events
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def publish_keyed(bootstrap: str, topic: str, events: list[Event]) -> None:
    """The project's way: the events committed to an outbox, the relay publishes them keyed
    by aggregate id."""
    with tempfile.TemporaryDirectory(prefix="scenario-ordering-") as workdir:
        engine = make_engine(f"sqlite:///{Path(workdir) / 'outbox.db'}")
        try:
            outbox = _outbox_with(engine, topic, events)
            await _relay_all(engine, outbox, bootstrap, len(events))
        finally:
            engine.dispose()


def _outbox_with(engine: sa.Engine, topic: str, events: list[Event]) -> Outbox:
    metadata = sa.MetaData()
    outbox = Outbox(outbox_table(metadata))
    metadata.create_all(engine)
    with engine.begin() as conn:
        for event in events:
            outbox.add(conn, topic, event)
    return outbox


async def _relay_all(engine: sa.Engine, outbox: Outbox, bootstrap: str, count: int) -> None:
    registry = CollectorRegistry()  # this run's own counters, not the process's
    relay = Relay(engine, outbox, bootstrap, process="scenario-ordering", registry=registry)
    await relay.start()
    try:
        sample = {"process": "scenario-ordering"}
        await until(
            lambda: registry.get_sample_value("shop_outbox_published_total", sample) == count
        )
    finally:
        await relay.stop()


async def measure(
    bootstrap: str, topic: str, publish: Publish, events: list[Event]
) -> Applications:
    """Publish everything first, then let a consumer group that starts late apply it."""
    await create_topics(bootstrap, [topic], PARTITIONS)
    await publish(bootstrap, topic, events)
    return await apply_as_group(bootstrap, topic, f"{topic}.appliers", len(events))


async def apply_as_group(bootstrap: str, topic: str, group: str, expected: int) -> Applications:
    consumers = [_consumer(bootstrap, topic, group, member) for member in range(CONSUMERS)]
    started: list[AIOKafkaConsumer] = []
    try:
        for consumer in consumers:
            await consumer.start()
            started.append(consumer)
        # Nothing is applied before every member owns its share: a partition moved by a later
        # join would be read again from the start, and a redelivery is not what this counts.
        await until(lambda: _settled(consumers))
        applications = Applications()
        drains = (_drain(consumer, applications, expected) for consumer in consumers)
        async with asyncio.timeout(WITHIN):
            await asyncio.gather(*drains)
        return applications
    finally:
        for consumer in started:
            await consumer.stop()


def _consumer(bootstrap: str, topic: str, group: str, member: int) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=f"{group}-{member}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,  # one pass over the topic; no offsets are needed after it
        **GROUP_TIMINGS,
    )


def _settled(consumers: list[AIOKafkaConsumer]) -> bool:
    """Every member owns partitions and together they own all of them: one generation."""
    owned = [consumer.assignment() for consumer in consumers]
    if not all(owned):
        return False
    partitions = [tp.partition for tps in owned for tp in tps]
    return sorted(partitions) == list(range(PARTITIONS))


async def _drain(consumer: AIOKafkaConsumer, applications: Applications, expected: int) -> None:
    while applications.applied < expected:
        batch = await consumer.getmany(timeout_ms=100, max_records=MAX_RECORDS)
        for records in batch.values():
            for record in records:
                applications.apply(parse(record.value), record.partition)
        await asyncio.sleep(PAUSE_PER_BATCH)


def report(events: list[Event], unkeyed: Applications, keyed: Applications) -> None:
    def both(figure: Callable[[Applications], int]) -> list[str]:
        return [str(figure(unkeyed)), str(figure(keyed))]

    print_table(
        ["", "no key (random partition)", "keyed by aggregate id (outbox + relay)"],
        [
            ["events", *[str(len(events))] * 2],
            ["aggregates (orders)", *both(lambda run: len(run.highest))],
            ["partitions", *[str(PARTITIONS)] * 2],
            ["consumers in the group", *[str(CONSUMERS)] * 2],
            ["events applied", *both(lambda run: run.applied)],
            ["most partitions one order used", *both(Applications.most_partitions)],
            ["out-of-order applications", *both(lambda run: run.out_of_order)],
            ["aggregates affected", *both(lambda run: len(run.affected))],
        ],
    )


def verdict(unkeyed: Applications, keyed: Applications) -> int:
    problems = []
    if unkeyed.out_of_order == 0:
        problems.append("the unkeyed run applied every order's statuses in order this time")
    if keyed.out_of_order:
        problems.append(f"the keyed run applied {keyed.out_of_order} events out of order")
    if not problems:
        print(
            "verdict: PASS: without a key an order's statuses scatter over partitions and are "
            "applied out of order; keyed by aggregate id they share a partition and keep order"
        )
        return 0
    print(f"verdict: FAIL: {'; '.join(problems)}")
    return 1


async def run(bootstrap: str) -> int:
    suffix = uuid.uuid4().hex[:8]  # a long-lived Kafka keeps topics and groups of past runs
    events = order_events()
    unkeyed = await measure(
        bootstrap, f"scenario.ordering.unkeyed-{suffix}", publish_unkeyed, events
    )
    keyed = await measure(bootstrap, f"scenario.ordering.keyed-{suffix}", publish_keyed, events)
    report(events, unkeyed, keyed)
    return verdict(unkeyed, keyed)
