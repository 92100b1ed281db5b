"""Events benchmark: libs/events (outbox, relay, consumer runner, inbox) on the dev broker and
on Apache Kafka, side by side in one run.

    .venv/bin/python bench/events.py [--events 20000] [--per-transaction 100] [--rate 200]
                                     [--seconds 10] [--only devbroker|apache-kafka]
                                     [--consumer-process] [--db-dir DIR]
                                     [--postgres postgresql+psycopg://postgres@127.0.0.1/postgres]

Starts `shop broker` and then Apache Kafka (bench/brokers.py), one after the other so they
never compete for the CPU. Against each, on SQLite files in a temporary dir:
- relay throughput: --events events committed to an outbox, --per-transaction per unit of
  work, before the relay starts; then the time from relay.start() until it has published
  them all (backlog 0);
- freshness: --rate events/s for --seconds, each committed in its own unit of work and
  followed by relay.notify(), applied by a ConsumerRunner through its inbox in its own DB;
  freshness = the time the handler applied the event - the time its unit of work committed,
  split into stages: commit -> the relay read the row -> the broker acknowledged it -> the
  consumer runner was handed it -> its handler applied it (and, aside, commit -> the relay
  marked it published). The stamps come from subclasses of the relay and the runner that
  wrap three of their internal steps (`_pending`, `_settle`, `_apply_batch`), nothing else.
  The writer, the relay and the runner share this process (and its interpreter lock);
  --consumer-process runs the runner in a process of its own, as the service that consumes
  runs in the shop. Stamps on both sides are time.perf_counter(), CLOCK_MONOTONIC on Linux:
  one clock for the machine.
Prints one table with both and the ratios, then the target (freshness p99 < 100 ms on each
broker). It is a script, not a timed test: nothing here asserts on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiokafka
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord, TopicPartition
from brokers import (
    APACHE_KAFKA,
    DEVBROKER,
    LABELS,
    Row,
    machine_line,
    measure_started,
    percentile,
    print_side_by_side,
)
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import make_url

from libs.db import make_engine
from libs.events.consumer import BatchResult, ConsumerRunner
from libs.events.envelope import Event
from libs.events.inbox import Inbox, inbox_tables
from libs.events.outbox import Outbox, PendingEvent, outbox_table
from libs.events.relay import Relay
from libs.events.topics import create_topics

TARGET_P99_MS = 100.0  # an event applied downstream within 100 ms of its commit, at p99
# Events spread over this many aggregates (keys), so every partition carries traffic.
AGGREGATES = 100
# Before the throughput run: a relay round on a topic of its own (first connections, Kafka's
# JIT; a cold JVM measures at half speed or less). Before the freshness run: events through
# the whole path until the consumer group has joined and applied them.
WARM_UP_EVENTS = 5_000
WARM_UP_FRESH = 50


@dataclass
class Workload:
    events: int
    per_transaction: int
    rate: int
    seconds: float
    partitions: int
    relay_batch: int
    relay_poll: float
    consumer_poll_ms: int
    db_dir: str | None
    postgres: str | None = None
    consumer_process: bool = False


@dataclass
class Figures:
    """What one broker did; rates are derived, so the table and the verdict agree."""

    events: int
    relay_s: float
    freshness_ms: list[float]
    relay_leg_ms: list[float]
    stages_ms: dict[str, list[float]]
    unit_of_work_ms: list[float]
    load_at_start: float
    cpu_share: float  # this process's CPU time over the freshness run's wall time
    consumer_cpu_share: float  # the consumer process's (nan when it runs in this one)
    machine_share: float  # every process's: the brokers', the DB server's, other users'

    @property
    def relay_events(self) -> float:
        return self.events / self.relay_s

    @property
    def p50_ms(self) -> float:
        return percentile(self.freshness_ms, 0.50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.freshness_ms, 0.99)

    @property
    def max_ms(self) -> float:
        return max(self.freshness_ms)


# --- the databases ------------------------------------------------------------------------


class Databases:
    """Fresh databases for one run: SQLite files in `workdir` (the embedded default), or, with
    --postgres, databases created on that server and dropped afterwards."""

    def __init__(self, workdir: Path, postgres: str | None) -> None:
        self.workdir, self.postgres = workdir, postgres
        self.created: list[str] = []

    def url(self, name: str) -> str:
        if self.postgres is None:
            return f"sqlite:///{self.workdir / name}.db"
        database = f"bench_{uuid.uuid4().hex[:10]}"
        with self._admin() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
        self.created.append(database)
        return make_url(self.postgres).set(database=database).render_as_string(False)

    def drop(self) -> None:
        with self._admin() as conn:
            for database in self.created:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))

    @contextlib.contextmanager
    def _admin(self) -> Iterator[sa.Connection]:
        assert self.postgres is not None  # only the PostgreSQL runs create databases
        engine = sa.create_engine(self.postgres, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()


def outbox_db(url: str) -> tuple[sa.Engine, Outbox]:
    """A process's own DB holding its outbox."""
    metadata = sa.MetaData()
    outbox = Outbox(outbox_table(metadata))
    engine = make_engine(url)
    metadata.create_all(engine)
    return engine, outbox


def inbox_db(url: str) -> tuple[sa.Engine, Inbox, sa.Table]:
    """The consumer's own DB: its inbox and `applied`, the table its handler changes."""
    metadata = sa.MetaData()
    inbox = Inbox(inbox_tables(metadata))
    applied = sa.Table(
        "applied",
        metadata,
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("aggregate_id", sa.String(200), nullable=False),
    )
    engine = make_engine(url)
    metadata.create_all(engine)
    return engine, inbox, applied


def new_event(number: int, data: dict[str, int] | None = None) -> Event:
    # The sequence is computed, not read with next_sequence: every writer here is one loop
    # that knows how many events each aggregate already has.
    aggregate = f"order-{number % AGGREGATES}"
    return Event("OrderPlaced", "order", aggregate, number // AGGREGATES + 1, data or {})


def fill_outbox(engine: sa.Engine, outbox: Outbox, topic: str, count: int, per_tx: int) -> None:
    """`count` events in units of work of `per_tx` events each (not timed)."""
    for first in range(0, count, per_tx):
        with engine.begin() as conn:
            for number in range(first, min(first + per_tx, count)):
                outbox.add(conn, topic, new_event(number, {"n": number}))


# --- relay throughput ---------------------------------------------------------------------


def new_relay(
    engine: sa.Engine, outbox: Outbox, bootstrap: str, w: Workload, registry: CollectorRegistry
) -> Relay:
    # A registry of its own per run: its published counter then counts this run only.
    return Relay(
        engine,
        outbox,
        bootstrap,
        process="bench",
        batch_size=w.relay_batch,
        poll_interval=w.relay_poll,
        registry=registry,
    )


async def relay_throughput(
    bootstrap: str, topic: str, dbs: Databases, w: Workload, n: int
) -> float:
    """Seconds from relay.start() until `n` pre-committed events are published."""
    engine, outbox = outbox_db(dbs.url(f"{topic}-outbox"))
    try:
        fill_outbox(engine, outbox, topic, n, w.per_transaction)
        registry = CollectorRegistry()
        relay = new_relay(engine, outbox, bootstrap, w, registry)
        started = time.perf_counter()
        await relay.start()
        try:
            await until(lambda: published_total(registry) >= n, within=300, step=0.002)
            return time.perf_counter() - started
        finally:
            await relay.stop()
    finally:
        engine.dispose()


def published_total(registry: CollectorRegistry) -> float:
    labels = {"process": "bench"}
    return registry.get_sample_value("shop_outbox_published_total", labels) or 0.0


async def until(condition: Callable[[], bool], *, within: float, step: float) -> None:
    # A metric or a dict filled from the runner's worker thread: nothing to await on.
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(step)


# --- freshness ----------------------------------------------------------------------------


@dataclass
class Clocks:
    """perf_counter() stamps by event id: one clock, since everything runs in this process."""

    committed: dict[str, float] = field(default_factory=dict)
    read: dict[str, float] = field(default_factory=dict)  # the relay read the row
    acked: dict[str, float] = field(default_factory=dict)  # the broker acknowledged it
    fetched: dict[str, float] = field(default_factory=dict)  # the runner was handed it
    applied: dict[str, float] = field(default_factory=dict)
    # Wall-clock stamps too, to set against the outbox's published_at (the relay's mark).
    committed_wall: dict[str, float] = field(default_factory=dict)
    unit_of_work_ms: dict[str, float] = field(default_factory=dict)  # BEGIN to COMMIT done

    def freshness_ms(self, ids: list[str]) -> list[float]:
        return [(self.applied[i] - self.committed[i]) * 1000 for i in ids]

    def stages_ms(self, ids: list[str]) -> dict[str, list[float]]:
        """Each stage's share of each event's freshness, in the order the event passed them
        (first sightings: a row read again after a failure keeps its first stamp)."""
        path = [self.committed, self.read, self.acked, self.fetched, self.applied]
        return {
            name: [(later[i] - earlier[i]) * 1000 for i in ids]
            for name, earlier, later in zip(STAGES, path[:-1], path[1:], strict=True)
        }

    def relay_leg_ms(self, ids: list[str], published: dict[str, float]) -> list[float]:
        """Commit -> marked published: the relay's read, send, acknowledgement and mark."""
        return [(published[i] - self.committed_wall[i]) * 1000 for i in ids]


STAGES = [
    "commit -> relay read",
    "relay read -> broker ack",
    "ack -> consumer",
    "consumer -> applied",
]


class StampedRelay(Relay):
    """The library's relay, stamping when it read each row and when the broker acknowledged
    it."""

    def __init__(self, *args: Any, clocks: Clocks, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clocks = clocks

    def _pending(self, conn: sa.Connection) -> list[PendingEvent]:
        rows = super()._pending(conn)
        now = time.perf_counter()
        for row in rows:
            self.clocks.read.setdefault(row.event_id, now)
        return rows

    async def _settle(self, rows: list[PendingEvent], sends: list[asyncio.Future]) -> list[Any]:
        for row, send in zip(rows, sends, strict=False):  # sends stop at a refused row
            send.add_done_callback(self._stamp_ack(row.event_id))
        return await super()._settle(rows, sends)

    def _stamp_ack(self, event_id: str) -> Callable[[asyncio.Future], None]:
        def stamp(_: asyncio.Future) -> None:
            self.clocks.acked.setdefault(event_id, time.perf_counter())

        return stamp


class StampedRunner(ConsumerRunner):
    """The library's consumer runner, stamping when a batch was handed to it (the moment it
    starts applying that batch in its worker thread)."""

    def __init__(self, *args: Any, clocks: Clocks, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clocks = clocks

    def _apply_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> BatchResult:
        now = time.perf_counter()
        for records in batch.values():
            for record in records:
                event_id = dict(record.headers).get("event_id", b"").decode()
                self.clocks.fetched.setdefault(event_id, now)
        return super()._apply_batch(batch)


def unit_of_work(
    engine: sa.Engine, outbox: Outbox, topic: str, event: Event, clocks: Clocks
) -> None:
    """One event in its own transaction, stamped once COMMIT returned (it is then visible to
    the relay). How long it took is the writer's side: what a request handler waits for."""
    began = time.perf_counter()
    with engine.begin() as conn:
        outbox.add(conn, topic, event)
    clocks.committed[event.id] = time.perf_counter()
    clocks.committed_wall[event.id] = time.time()
    clocks.unit_of_work_ms[event.id] = (clocks.committed[event.id] - began) * 1000


def applier(applied: sa.Table, clocks: Clocks) -> Callable[[sa.Connection, Event], None]:
    def handle(conn: sa.Connection, event: Event) -> None:
        conn.execute(applied.insert().values(event_id=event.id, aggregate_id=event.aggregate_id))
        # Stamped in the handler, before the runner commits the inbox transaction: the
        # consumer's COMMIT (an fsync on SQLite) comes on top.
        clocks.applied[event.id] = time.perf_counter()

    return handle


async def paced_writes(
    engine: sa.Engine,
    outbox: Outbox,
    relay: Relay,
    topic: str,
    clocks: Clocks,
    numbers: range,
    rate: float,
) -> list[str]:
    """Commit one event per unit of work at `rate`/s, notifying the relay after each, as a
    request handler would; returns their ids."""
    ids: list[str] = []
    started = time.perf_counter()
    for index, number in enumerate(numbers):
        await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
        event = new_event(number)
        # SQLite blocks: off the loop, as a sync route handler runs in a thread pool.
        await asyncio.to_thread(unit_of_work, engine, outbox, topic, event, clocks)
        relay.notify()
        ids.append(event.id)
    return ids


@dataclass
class Freshness:
    freshness_ms: list[float]
    relay_leg_ms: list[float]
    stages_ms: dict[str, list[float]]
    unit_of_work_ms: list[float]
    cpu_share: float
    consumer_cpu_share: float
    machine_share: float


def busy_s() -> float:
    """CPU seconds the whole machine has been busy (user, nice, system, irq, softirq,
    steal, over all cores) since boot; nan where there is no /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7)) / os.sysconf("SC_CLK_TCK")


async def freshness_run(bootstrap: str, topic: str, dbs: Databases, w: Workload) -> Freshness:
    """Freshness of each event, its stages, and the relay's share of it."""
    out_engine, outbox = outbox_db(dbs.url("fresh-outbox"))
    inbox_url = dbs.url("fresh-inbox")
    clocks = Clocks()
    registry = CollectorRegistry()
    relay = StampedRelay(
        out_engine,
        outbox,
        bootstrap,
        process="bench",
        batch_size=w.relay_batch,
        poll_interval=w.relay_poll,
        registry=registry,
        clocks=clocks,
    )
    group = f"bench-fresh-{uuid.uuid4().hex[:6]}"
    consumer: Consumer = (
        ConsumerProcess(bootstrap, topic, group, inbox_url, w.consumer_poll_ms)
        if w.consumer_process
        else InProcessConsumer(bootstrap, topic, group, inbox_url, w.consumer_poll_ms)
    )
    await relay.start()
    await consumer.start()
    stopped = False
    try:
        # Warm-up: until the group has joined and the whole path has carried events.
        warm_up = range(WARM_UP_FRESH)
        await paced_writes(out_engine, outbox, relay, topic, clocks, warm_up, 50)
        await until(lambda: consumer.applied() >= WARM_UP_FRESH, within=60, step=0.01)
        count = int(w.rate * w.seconds)
        numbers = range(WARM_UP_FRESH, WARM_UP_FRESH + count)
        consumer.measuring()
        began, cpu_began, machine_began = time.perf_counter(), time.process_time(), busy_s()
        ids = await paced_writes(out_engine, outbox, relay, topic, clocks, numbers, w.rate)
        await until(lambda: consumer.applied() >= WARM_UP_FRESH + count, within=60, step=0.01)
        wall = time.perf_counter() - began
        cpu_share = (time.process_time() - cpu_began) / wall
        machine_share = (busy_s() - machine_began) / wall
        stopped, (fetched, applied, consumer_cpu) = True, await consumer.stop()
        clocks.fetched.update(fetched)
        clocks.applied.update(applied)
        with out_engine.connect() as conn:
            t = outbox.table
            rows = conn.execute(sa.select(t.c.event_id, t.c.published_at)).all()
        published = {i: _aware(at).timestamp() for i, at in rows if at is not None}
    finally:
        if not stopped:
            await consumer.stop()
        await relay.stop()
        out_engine.dispose()
    return Freshness(
        clocks.freshness_ms(ids),
        clocks.relay_leg_ms(ids, published),
        clocks.stages_ms(ids),
        [clocks.unit_of_work_ms[i] for i in ids],
        cpu_share,
        consumer_cpu / wall,
        machine_share,
    )


# What a consumer side hands back: when the runner was handed each event and when its
# handler applied it (by event id), and the CPU seconds it spent while the run was measured.
Stamps = tuple[dict[str, float], dict[str, float], float]


class Consumer(Protocol):
    async def start(self) -> None: ...
    def applied(self) -> int: ...
    def measuring(self) -> None: ...
    async def stop(self) -> Stamps: ...


class InProcessConsumer:
    """The runner in this process, sharing its interpreter with the writer and the relay."""

    def __init__(self, bootstrap: str, topic: str, group: str, url: str, poll_ms: int) -> None:
        self.engine, inbox, applied = inbox_db(url)
        self.clocks = Clocks()
        self.runner = StampedRunner(
            bootstrap,
            group,
            [topic],
            self.engine,
            inbox,
            applier(applied, self.clocks),
            poll_timeout_ms=poll_ms,
            registry=CollectorRegistry(),
            clocks=self.clocks,
        )

    async def start(self) -> None:
        await self.runner.start()

    def applied(self) -> int:
        return len(self.clocks.applied)

    def measuring(self) -> None:
        pass  # its CPU is the bench process's

    async def stop(self) -> Stamps:
        try:
            await self.runner.stop()
        finally:
            self.engine.dispose()
        return dict(self.clocks.fetched), dict(self.clocks.applied), float("nan")


class ConsumerProcess:
    """The runner in a process of its own (spawned: a fresh interpreter), as the service that
    consumes the events runs in the shop. It counts what it applied in shared memory and,
    once told to stop, hands its stamps back in a file."""

    def __init__(self, bootstrap: str, topic: str, group: str, url: str, poll_ms: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.count = context.Value("i", 0)
        self.measured = context.Event()
        self.stopping = context.Event()
        handle, self.out = tempfile.mkstemp(prefix="events-bench-consumer-", suffix=".json")
        os.close(handle)
        self.process = context.Process(
            target=consume,
            args=(bootstrap, topic, group, url, poll_ms, self.count, self.measured),
            kwargs={"stopping": self.stopping, "out": self.out},
            name="bench-consumer",
        )

    async def start(self) -> None:
        self.process.start()

    def applied(self) -> int:
        if not self.process.is_alive() and self.process.exitcode is not None:
            raise RuntimeError(f"the consumer process exited with {self.process.exitcode}")
        return int(self.count.value)

    def measuring(self) -> None:
        self.measured.set()

    async def stop(self) -> Stamps:
        self.stopping.set()
        return await asyncio.to_thread(self._collect)

    def _collect(self) -> Stamps:
        self.process.join(60)
        try:
            if self.process.exitcode != 0:
                raise RuntimeError(f"the consumer process exited with {self.process.exitcode}")
            stamps = json.loads(Path(self.out).read_text())
        finally:
            Path(self.out).unlink(missing_ok=True)
        return stamps["fetched"], stamps["applied"], stamps["cpu_s"]


def consume(
    bootstrap: str,
    topic: str,
    group: str,
    url: str,
    poll_ms: int,
    count: Any,
    measured: Any,
    *,
    stopping: Any,
    out: str,
) -> None:
    """The consumer process: a runner until told to stop, then its stamps into `out`."""
    stamps = asyncio.run(_consume(bootstrap, topic, group, url, poll_ms, count, measured, stopping))
    Path(out).write_text(json.dumps(stamps))


async def _consume(
    bootstrap: str,
    topic: str,
    group: str,
    url: str,
    poll_ms: int,
    count: Any,
    measured: Any,
    stopping: Any,
) -> dict[str, Any]:
    engine, inbox, applied = inbox_db(url)
    clocks = Clocks()
    apply = applier(applied, clocks)

    def counted(conn: sa.Connection, event: Event) -> None:
        apply(conn, event)
        with count.get_lock():
            count.value += 1

    runner = StampedRunner(
        bootstrap,
        group,
        [topic],
        engine,
        inbox,
        counted,
        poll_timeout_ms=poll_ms,
        registry=CollectorRegistry(),
        clocks=clocks,
    )
    await runner.start()
    cpu_began: float | None = None
    try:
        while not stopping.is_set():
            if cpu_began is None and measured.is_set():
                cpu_began = time.process_time()
            await asyncio.sleep(0.01)
        cpu_s = time.process_time() - (cpu_began if cpu_began is not None else time.process_time())
    finally:
        await runner.stop()
        engine.dispose()
    return {"fetched": clocks.fetched, "applied": clocks.applied, "cpu_s": cpu_s}


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite keeps no zone; UTC written


async def measure(bootstrap: str, w: Workload) -> Figures:
    # Fresh names per run, like bench/devbroker.py.
    run = uuid.uuid4().hex[:8]
    topics = [f"bench-events-{name}-{run}" for name in ("warm-up", "relay", "freshness")]
    await create_topics(bootstrap, topics, w.partitions)
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="events-bench-", dir=w.db_dir) as tmp:
        dbs = Databases(Path(tmp), w.postgres)
        try:
            await relay_throughput(bootstrap, topics[0], dbs, w, WARM_UP_EVENTS)
            relay_s = await relay_throughput(bootstrap, topics[1], dbs, w, w.events)
            fresh = await freshness_run(bootstrap, topics[2], dbs, w)
        finally:
            if w.postgres:
                dbs.drop()
    return Figures(
        w.events,
        relay_s,
        fresh.freshness_ms,
        fresh.relay_leg_ms,
        fresh.stages_ms,
        fresh.unit_of_work_ms,
        load_at_start,
        fresh.cpu_share,
        fresh.consumer_cpu_share,
        fresh.machine_share,
    )


# --- the report ---------------------------------------------------------------------------


def stage_rows(stage: str) -> list[Row]:
    def at(fraction: float) -> Callable[[Figures], float]:
        return lambda figures: percentile(figures.stages_ms[stage], fraction)

    return [(f"  {stage} p50", at(0.50), ",.2f"), (f"  {stage} p99", at(0.99), ",.2f")]


ROWS: list[Row] = [
    ("relay events/s", lambda f: f.relay_events, ",.0f"),
    ("freshness p50 ms", lambda f: f.p50_ms, ",.2f"),
    ("freshness p99 ms", lambda f: f.p99_ms, ",.2f"),
    ("freshness max ms", lambda f: f.max_ms, ",.2f"),
    *[row for stage in STAGES for row in stage_rows(stage)],
    ("  commit -> marked p50", lambda f: percentile(f.relay_leg_ms, 0.50), ",.2f"),
    ("  commit -> marked p99", lambda f: percentile(f.relay_leg_ms, 0.99), ",.2f"),
    ("writer's unit of work p50", lambda f: percentile(f.unit_of_work_ms, 0.50), ",.2f"),
    ("writer's unit of work p99", lambda f: percentile(f.unit_of_work_ms, 0.99), ",.2f"),
    ("load average at start", lambda f: f.load_at_start, ".2f"),
    ("bench process CPU, cores", lambda f: f.cpu_share, ".2f"),
    ("consumer process CPU, cores", lambda f: f.consumer_cpu_share, ".2f"),
    ("machine CPU busy, cores", lambda f: f.machine_share, ".2f"),
]


def print_header(w: Workload, skipped: dict[str, str]) -> None:
    print(
        f"libs/events on {'PostgreSQL' if w.postgres else 'SQLite files'}, "
        f"aiokafka {aiokafka.__version__}, "
        f"{w.partitions} partition(s) per topic, {AGGREGATES} aggregates (keys)"
    )
    print(
        f"relay throughput: {w.events:,} events committed {w.per_transaction} per unit of work, "
        f"then published; Relay(batch_size={w.relay_batch}, poll_interval={w.relay_poll:g})"
    )
    print(
        f"freshness: {w.rate:,} events/s for {w.seconds:g} s "
        f"({int(w.rate * w.seconds):,} events), one per unit of work + relay.notify(); "
        f"ConsumerRunner(poll_timeout_ms={w.consumer_poll_ms}), commit -> handler applied"
    )
    # The broker, the relay, the consumer and both DBs share this machine's cores.
    if w.postgres:
        print(f"PostgreSQL at {make_url(w.postgres).render_as_string()}: a database per side")
    else:
        where = w.db_dir or tempfile.gettempdir()
        print(
            f"SQLite files under {where} (journal_mode=DELETE, synchronous=FULL: fsync per "
            "commit, and readers and writers of a file wait for each other)"
        )
    print(machine_line())
    print(
        "stages in ms (p50 and p99 of each on its own: they do not add up); CPU in cores over "
        "the freshness run (machine: every process, the broker's, the DB server's and other "
        "users' too); the consumer runs "
        + ("in a process of its own" if w.consumer_process else "in the bench's process")
    )
    for kind, why in skipped.items():
        print(f"{LABELS[kind]}: not measured ({why})")
    print()


def print_verdict(results: dict[str, Figures]) -> None:
    print()
    print(f"target: freshness p99 < {TARGET_P99_MS:g} ms on each broker")
    for kind, figures in results.items():
        met = figures.p99_ms < TARGET_P99_MS
        print(f"  {LABELS[kind]:<14} p99 {figures.p99_ms:8.2f} ms   {'met' if met else 'MISSED'}")


# --- main ---------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    w = Workload(
        args.events,
        args.per_transaction,
        args.rate,
        args.seconds,
        args.partitions,
        args.relay_batch,
        args.relay_poll,
        args.consumer_poll_ms,
        args.db_dir,
        args.postgres,
        args.consumer_process,
    )
    results: dict[str, Figures] = {}
    skipped: dict[str, str] = {}
    # One after the other: each broker has the machine to itself while it is measured.
    for kind in [args.only] if args.only else [DEVBROKER, APACHE_KAFKA]:
        if (
            figures := await measure_started(kind, w.partitions, lambda b: measure(b, w))
        ) is not None:
            results[kind] = figures
        else:
            skipped[kind] = "Java 17+ or the Kafka jars missing: the dev broker alone"
    print_header(w, skipped)
    print_side_by_side(results, ROWS)
    print_verdict(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="relay throughput backlog")
    parser.add_argument("--per-transaction", type=int, default=100, help="events per unit of work")
    parser.add_argument("--rate", type=int, default=200, help="events/s for the freshness run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the freshness run")
    parser.add_argument("--partitions", type=int, default=3, help="partitions per topic")
    # The libs/events defaults, which a service uses as they are.
    parser.add_argument("--relay-batch", type=int, default=100, help="Relay batch_size")
    parser.add_argument("--relay-poll", type=float, default=0.2, help="Relay poll_interval, s")
    parser.add_argument(
        "--consumer-poll-ms", type=int, default=200, help="ConsumerRunner poll_timeout_ms"
    )
    # SQLite commits fsync (synchronous=FULL, rollback journal): the disk under the DBs is
    # part of the figure. Point this at tmpfs to see how much of it.
    parser.add_argument("--db-dir", help="where the SQLite files go (default: the temp dir)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run on PostgreSQL instead (a server URL; fresh databases are created and dropped)",
    )
    parser.add_argument(
        "--consumer-process",
        action="store_true",
        help="run the consumer runner in a process of its own (its own interpreter lock)",
    )
    parser.add_argument("--only", choices=[DEVBROKER, APACHE_KAFKA], help="measure one broker")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
