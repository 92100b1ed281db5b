"""The outbox relay: publishes committed outbox rows to Kafka, off the request path.

Delivery is at least once. A row is marked published only after the broker acknowledged it
(acks="all"), so a crash between the two sends it again on restart: a duplicate, which the
consumer's inbox absorbs, never a loss. Per-aggregate order holds because rows go out in
`position` order and a batch stops at its first failure: nothing after an unpublished row is
marked, so the retry starts from that row again.

One relay per outbox table: two would both publish every row (and interleave their retries).

What the ordering rests on: with enable_idempotence aiokafka keeps one batch per partition in
flight and retries it, in order, without expiring it, so while one producer lives a later event
of an aggregate cannot overtake an earlier one. A batch fails only in the rare cases the
producer gives up (a partition without a leader for longer than the request timeout, a fatal
producer error); the relay then waits for every send of the batch to settle and replaces the
producer before retrying, so no stale send races the retry. A later send of the same partition
can still have landed before the retry of an earlier one: consumers that must never apply an
older state check the envelope's per-aggregate `sequence`.

On SQLite the relay shares one file lock with every unit of work of its process: it reads
under a shared lock (a writer's open transaction does not hold the send back), holds no lock
while it awaits the broker, and asks for the write lock to mark a batch in the gaps between
writers instead of through SQLite's busy handler, which starved it (`_unlocked`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from libs.events.outbox import Outbox, PendingEvent
from libs.metric_sets import per_registry

log = logging.getLogger(__name__)


class PublishFailed(Exception):
    """A batch stopped at an event the broker did not acknowledge (recorded on its row)."""


@dataclass(frozen=True)
class RelayMetrics:
    backlog: Gauge
    oldest_age: Gauge
    published: Counter
    failures: Counter


@per_registry  # a relay per outbox in one process shares the set, told apart by `process`
def relay_metrics(registry: CollectorRegistry) -> RelayMetrics:
    return RelayMetrics(
        Gauge(
            "shop_outbox_backlog",
            "Committed outbox events not yet published to Kafka.",
            ["process"],
            registry=registry,
        ),
        Gauge(
            "shop_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox event (0 when none wait).",
            ["process"],
            registry=registry,
        ),
        Counter(
            "shop_outbox_published_total",
            "Outbox events the broker acknowledged and the relay marked published.",
            ["process"],
            registry=registry,
        ),
        Counter(
            "shop_outbox_publish_failures_total",
            "Outbox batches that stopped at an event the broker did not acknowledge.",
            ["process"],
            registry=registry,
        ),
    )


class Relay:
    """Publishes an outbox to Kafka in a background task: `await start()`, then
    `try/finally: await stop()`, like the aiokafka clients it wraps.

    `start()` does not wait for the broker: a process must come up (and keep taking writes
    into its outbox) while Kafka is away; the relay retries with backoff until it is back."""

    def __init__(
        self,
        engine: sa.Engine,
        outbox: Outbox,
        bootstrap_servers: str,
        *,
        process: str = "",
        topic_prefix: str = "",
        batch_size: int = 100,
        poll_interval: float = 0.2,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        request_timeout_ms: int = 10_000,
        ack_timeout: float = 10.0,
        producer_options: Mapping[str, Any] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.engine, self.outbox = engine, outbox
        # Prepended to every row's topic on the way out (SHOP_KAFKA_TOPIC_PREFIX): the rows
        # keep the domain's topic names, a deployment sharing a cluster keeps its own.
        self.topic_prefix = topic_prefix
        self.batch_size, self.poll_interval = batch_size, poll_interval
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.ack_timeout = ack_timeout
        self._close_timeout = request_timeout_ms / 1000
        self._producer_settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "request_timeout_ms": request_timeout_ms,
            **(producer_options or {}),
            # Not overridable: without them an acknowledged event could still be lost with a
            # broker, or a retried send could duplicate or reorder inside one partition.
            "acks": "all",
            "enable_idempotence": True,
        }
        metrics = relay_metrics(registry if registry is not None else REGISTRY)
        self._backlog = metrics.backlog.labels(process)
        self._oldest_age = metrics.oldest_age.labels(process)
        self._published = metrics.published.labels(process)
        self._failures = metrics.failures.labels(process)
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        # The next batch, read in the transaction that marked the last one.
        self._next: list[PendingEvent] = []
        self._recount_at = 0.0

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the relay is already started")
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    def notify(self) -> None:
        """Wake the relay now (call after a commit that added events) instead of waiting for
        the next poll. Safe from any thread: sync route handlers run in a thread pool, where
        setting an asyncio.Event directly would race the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def stop(self, grace: float | None = None) -> None:
        """Publish what the outbox holds (the batch in flight, then batch after batch until
        none is left), then flush and stop the producer.

        With the broker away, the batch in flight waits for it; `grace` (the process's
        shutdown budget) bounds that wait, after which the batch is abandoned unmarked: its
        events go out again on the next start (duplicates, never losses)."""
        self._stopping = True
        self._wake.set()
        try:
            if self._task is not None:
                done, _ = await asyncio.wait({self._task}, timeout=grace)
                if not done:
                    log.warning("outbox relay: batch abandoned unmarked after %ss", grace)
                    self._task.cancel()
                    await asyncio.wait({self._task})
                elif not self._task.cancelled():
                    self._task.result()  # a crash of the relay task surfaces here
        finally:
            await self._close_producer()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                published = await self.publish_batch()
            except Exception as exc:  # the loop must outlive a broker or DB outage
                failures += 1
                if not isinstance(exc, PublishFailed):  # that one is logged where recorded
                    log.warning("outbox relay: batch failed (attempt %d): %r", failures, exc)
                if self._stopping:  # what is left goes out on the next start
                    return
                await self._pause(min(self.backoff_max, self.backoff_initial * 2 ** (failures - 1)))
                continue
            failures = 0
            if self._stopping:
                # Stopping flushes: batch after batch until the outbox is empty (what the
                # last requests committed while the process drained), within `stop`'s grace.
                if not published:
                    return
                continue
            if not self._next:  # what the mark's transaction found waiting goes out at once
                await self._pause(self.poll_interval)

    async def _pause(self, seconds: float) -> None:
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def publish_batch(self) -> int:
        """Read, send, await the acknowledgements, mark: one batch. Returns how many events
        were marked published; raises after recording a failure on the event that stopped
        the batch."""
        rows, self._next = self._next or await asyncio.to_thread(self._read), []
        if not rows:
            return 0
        try:
            producer = await self._ensure_producer()
            sends, send_error = await _send_all(producer, rows, self.topic_prefix)
            acked, error = _acknowledged_prefix(rows, await self._settle(rows, sends), send_error)
        except Exception as exc:
            acked, error = [], exc
        if acked:
            await self.mark_published([row.position for row in acked])
            self._published.inc(len(acked))
        if error is not None:
            stopped_at = rows[len(acked)]
            await self._failed(stopped_at, error)
            await self._close_producer()  # a fresh producer, so no stale send races the retry
            raise PublishFailed(f"event {stopped_at.event_id}: {error!r}") from error
        return len(acked)

    async def _settle(self, rows: list[PendingEvent], sends: list[asyncio.Future]) -> list[Any]:
        """Wait until every send is acknowledged or failed.

        With enable_idempotence aiokafka never expires a batch whose partition has a known
        leader: it retries it, in order, until the broker answers. Giving up on it here and
        resending would only add duplicates, so the relay keeps waiting, and records a stall
        on the first unacknowledged row every `ack_timeout` so the outage shows in the row's
        attempts/last_error and in the failures counter instead of looking like silence."""
        settled = asyncio.gather(*sends, return_exceptions=True)
        while True:
            done, _ = await asyncio.wait({settled}, timeout=self.ack_timeout)
            if done:
                return settled.result()
            stuck = next((rows[i] for i, send in enumerate(sends) if not send.done()), None)
            if stuck is not None:
                waited = f"no acknowledgement within {self.ack_timeout}s; still retrying"
                await self._failed(stuck, TimeoutError(waited))

    async def _failed(self, row: PendingEvent, error: BaseException) -> None:
        self._failures.inc()
        log.warning("outbox relay: event %s not published: %r", row.event_id, error)
        await asyncio.to_thread(self._record_failure, row, error)

    async def mark_published(self, positions: list[int]) -> None:
        """The step after the broker acknowledged: a crash before it is the duplicate case.
        Its transaction also reads the next batch, which then goes out right after it."""
        await asyncio.to_thread(self._mark, positions)

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(**self._producer_settings)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()  # start() leaves its connections open when it fails
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            # stop() flushes what is buffered, which with the broker away would never end;
            # anything it drops is still unmarked in the outbox.
            await asyncio.wait_for(producer.stop(), self._close_timeout)
        except TimeoutError:
            log.warning("outbox relay: producer did not flush within %ss", self._close_timeout)

    def _read(self) -> list[PendingEvent]:
        # A read transaction (BEGIN DEFERRED on SQLite: a shared lock), so polling the outbox
        # never takes the write lock the process's own writers queue on.
        with self.engine.connect() as conn:
            reader = conn.execution_options(readonly=True)
            return _unlocked(reader, lambda: self._pending(reader))

    def _mark(self, positions: list[int]) -> None:
        # One transaction per batch: it marks the batch (all of it or none) and reads the
        # next one, so the relay takes the lock once per batch, not once to mark and again
        # to read.
        with _write_transaction(self.engine) as conn:
            self.outbox.mark_published(conn, positions)
            following = self._pending(conn)
        self._next = following

    def _pending(self, conn: sa.Connection) -> list[PendingEvent]:
        """The next batch, with the backlog gauges read off it: fewer rows than a batch are the
        whole backlog. Only while more than a batch waits is the outbox counted, at most once
        a second: counting it per batch made draining a large backlog quadratic."""
        rows = self.outbox.pending(conn, self.batch_size)
        if len(rows) < self.batch_size:
            self._show_backlog(len(rows), min((row.created_at for row in rows), default=None))
        elif (now := time.monotonic()) >= self._recount_at:
            self._recount_at = now + BACKLOG_RECOUNT_SECONDS
            self._show_backlog(*self.outbox.backlog(conn))
        return rows

    def _record_failure(self, row: PendingEvent, error: BaseException) -> None:
        with _write_transaction(self.engine) as conn:
            self.outbox.record_failure(conn, row.position, f"{type(error).__name__}: {error}")
            self._show_backlog(*self.outbox.backlog(conn))

    def _show_backlog(self, count: int, oldest: datetime | None) -> None:
        self._backlog.set(count)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        self._oldest_age.set(max(age, 0.0))


async def _send_all(
    producer: AIOKafkaProducer, rows: list[PendingEvent], prefix: str
) -> tuple[list[asyncio.Future[Any]], BaseException | None]:
    """Hand the rows to the producer in order; stops at the first one it refuses (no
    metadata for the topic, say), returning the futures of those it took."""
    sends: list[asyncio.Future[Any]] = []
    for row in rows:
        try:
            sends.append(
                await producer.send(
                    prefix + row.topic,
                    row.payload,
                    key=row.aggregate_id.encode(),  # Event.key: one aggregate, one partition
                    headers=[("type", row.type.encode()), ("event_id", row.event_id.encode())],
                )
            )
        except Exception as exc:
            return sends, exc
    return sends, None


def _acknowledged_prefix(
    rows: list[PendingEvent], results: list[Any], send_error: BaseException | None
) -> tuple[list[PendingEvent], BaseException | None]:
    """The longest acknowledged prefix and the error that ended it. Rows after a failure are
    not reported as published even if acknowledged: the retry resends them after the failed
    one, so a consumer's first sight of an aggregate's events stays in order."""
    for count, result in enumerate(results):
        if isinstance(result, BaseException):
            return rows[:count], result
    return rows[: len(results)], send_error


# How often the relay asks again for a SQLite lock it is waiting for.
LOCK_RETRY_SECONDS = 0.0005
# How often the backlog gauges count the outbox while more than a batch waits.
BACKLOG_RECOUNT_SECONDS = 1.0
T = TypeVar("T")


@contextlib.contextmanager
def _write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """`engine.begin()`, except that on SQLite the write lock is waited for by `_unlocked`."""
    with engine.connect() as conn, _unlocked(conn, conn.begin):
        yield conn


def _unlocked(conn: sa.Connection, take: Callable[[], T]) -> T:
    """`take()` (the statement that takes a SQLite lock: BEGIN IMMEDIATE for the write lock,
    a transaction's first read for the shared one), asked for again every half millisecond
    while the file is locked, instead of by SQLite's busy handler.

    The busy handler sleeps between tries, longer each time (1, 2, 5, 10, 15, 20, 25 ... 100
    ms), and a waiter keeps no place in a queue: against a steady stream of short write
    transactions (every unit of work of the process is one) it loses a few races, then sleeps
    through the gaps between them. At 200 commits/s the relay's reads and marks waited for
    seconds. The bound stays the engine's busy_timeout; once the lock is held, the rest of the
    transaction (its COMMIT waits for readers to leave) waits as the engine says."""
    if conn.dialect.name != "sqlite":
        return take()
    driver = conn.connection.driver_connection
    assert driver is not None
    (patience_ms,) = driver.execute("PRAGMA busy_timeout").fetchone()
    deadline = time.monotonic() + patience_ms / 1000
    driver.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                return take()
            except sa.exc.OperationalError as exc:
                busy = getattr(exc.orig, "sqlite_errorname", "") == "SQLITE_BUSY"
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(LOCK_RETRY_SECONDS)
    finally:
        driver.execute(f"PRAGMA busy_timeout={int(patience_ms)}")
