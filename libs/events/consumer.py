"""The consumer runner: one consumer group's loop, run as a task in a process's lifespan.

Each message is applied in the database transaction that also writes its inbox row, so a
redelivered event is recognised and skipped (a partition's batch shares one transaction; a
savepoint per message only when a handler refused one of them). Kafka offsets are committed
only after the batch's transactions committed: a crash in between means redelivery, which the
inbox absorbs, never a lost event. A message that cannot be applied (not an envelope, or its
handler raised) is parked with the reason and the partition moves on: a poison event must not
stop every later event behind it. The price is that a parked event's aggregate sees later
events before it; handlers that must not apply an older state check the envelope's
`sequence`.

What is not poison: the database being away (OperationalError, InterfaceError). Parking
would then swallow the whole stream, so the runner stops that partition at the message,
rewinds to it, and retries after a backoff.

A handler whose effect carries its own key (a `KeyedHandler`: a points ledger line per
(payment, reason), say) needs no inbox row: it checks and writes that key in its own
transaction, in whichever database its effect lands. The inbox table then only keeps the
group's parked events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata, TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from libs.events.envelope import Event, MalformedEvent, parse
from libs.events.inbox import Inbox
from libs.events.topics import create_topics
from libs.metric_sets import per_registry

log = logging.getLogger(__name__)

Handler = Callable[[sa.Connection, Event], None]
Outcome = Literal["processed", "duplicate", "parked"]
# The database is away or busy: retry the message later rather than park it.
TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError)


@dataclass(frozen=True)
class KeyedHandler:
    """A handler that is idempotent by a key of its own effect, checked and written in the
    same transaction as the effect (which it opens itself): `apply` returns True when it
    applied the event, False when the key showed the effect was there already.

    For a consumer whose writes do not always land in the database the inbox is in: the
    member service writes points to the legacy DB while it shares it, to its own DB after
    the cutover, and the ledger's key moves with the data while an inbox row would not."""

    apply: Callable[[Event], bool]


@dataclass(frozen=True)
class ConsumerMetrics:
    events: Counter
    lag: Gauge
    parked: Gauge


@per_registry  # several groups in one process share the set, told apart by `group`
def consumer_metrics(registry: CollectorRegistry) -> ConsumerMetrics:
    return ConsumerMetrics(
        Counter(
            "shop_consumer_events",
            "Events a consumer group handled, by outcome: processed, duplicate (already in "
            "the inbox, skipped) or parked (malformed, or its handler failed).",
            ["group", "outcome"],
            registry=registry,
        ),
        Gauge(
            "shop_consumer_lag",
            "Messages behind the partition's high watermark, as the consumer sees it.",
            ["group", "topic", "partition"],
            registry=registry,
        ),
        Gauge(
            "shop_consumer_parked_events",
            "Events of the group parked and not replayed yet, counted in its inbox's DB at "
            "start-up, after a batch that parked one and after a replay.",
            ["group"],
            registry=registry,
        ),
    )


class _Refused(Exception):
    """A handler raised in a batch applied without savepoints: run it again with them."""


class ParkedEventNotFound(LookupError):
    """No parked event of this group has that id."""


class AlreadyReplayed(Exception):
    """The parked event was replayed before; a replay runs once."""


class ReplayFailed(Exception):
    """The parked event still cannot be applied (the message says why); nothing changed."""


@dataclass
class BatchResult:
    """What one batch did: offsets to commit, outcomes to count, partitions to rewind."""

    commit: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    rewind: dict[TopicPartition, int] = field(default_factory=dict)


class ConsumerRunner:
    """`await start()`, then `try/finally: await stop()`, like the aiokafka client it wraps.

    `start()` does not wait for the broker: a process comes up while Kafka is away, and the
    runner retries with backoff until it is back."""

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        topics: Sequence[str],
        engine: sa.Engine,
        inbox: Inbox,
        handler: Handler | KeyedHandler,
        *,
        group_instance_id: str | None = None,
        topic_partitions: int | None = None,
        max_records: int = 100,
        poll_timeout_ms: int = 200,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        consumer_options: Mapping[str, Any] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.group_id, self.topics = group_id, list(topics)
        self.engine, self.inbox, self.handler = engine, inbox, handler
        self.max_records, self.poll_timeout_ms = max_records, poll_timeout_ms
        # Create the topics it reads, with this many partitions, if they are missing: a group
        # that subscribes to a topic before it exists sees it only at its next metadata
        # refresh (minutes), and the topic's first events wait that long.
        self.topic_partitions = topic_partitions
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self._settings: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "group_instance_id": group_instance_id,
            **(consumer_options or {}),
            # Not overridable: offsets are committed by the runner, after the DB commit, and a
            # new group starts from the beginning so no event is skipped.
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
        }
        self.metrics: ConsumerMetrics = consumer_metrics(
            registry if registry is not None else REGISTRY
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        # Held while a batch is applied and its offsets committed; a rebalance waits for it,
        # so a partition is handed over only after its last batch is committed.
        self._batch = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._retry_delay = backoff_initial
        self._parked_unknown = True  # counted at the first poll, then when it changes
        # How many times the group handed this member its partitions: 1 while no rebalance
        # has touched it (a static member's restart, for one, should leave it so).
        self.assignments = 0

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the consumer runner is already started")
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.group_id}")

    async def stop(self) -> None:
        """Finishes the batch in progress, commits its offsets, then leaves the group. A
        runner that crashed re-raises its error here, so the lifespan shows it."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this member owns now (empty until it joined the group)."""
        return frozenset(self._consumer.assignment()) if self._consumer else frozenset()

    async def replay(self, parked_id: int) -> Outcome:
        """Applies a parked event through the inbox, and marks it replayed, in one
        transaction; an event that was applied meanwhile (republished) counts as duplicate."""
        outcome = await asyncio.to_thread(self._replay, parked_id)
        self.metrics.events.labels(self.group_id, outcome).inc()
        self._parked_unknown = True
        await self._count_parked()
        return outcome

    async def _run(self) -> None:
        delay, missing_topics = self.backoff_initial, self.topic_partitions is not None
        while not self._stopping.is_set():
            if missing_topics:
                try:
                    assert self.topic_partitions is not None  # else missing_topics starts False
                    await create_topics(
                        self._settings["bootstrap_servers"], self.topics, self.topic_partitions
                    )
                    missing_topics = False
                except KafkaError as exc:
                    log.warning("consumer group %s: topics not created: %s", self.group_id, exc)
                    await self._pause(delay)
                    delay = min(delay * 2, self.backoff_max)
                    continue
            consumer = AIOKafkaConsumer(**self._settings)
            consumer.subscribe(self.topics, listener=_HandOver(self))
            try:
                await consumer.start()
                self._consumer = consumer
                delay = self.backoff_initial
                await self._poll(consumer)
            except KafkaError as exc:
                log.warning("consumer group %s: %s; retrying in %.1fs", self.group_id, exc, delay)
                await self._pause(delay)
                delay = min(delay * 2, self.backoff_max)
            finally:
                await consumer.stop()  # a dynamic member leaves the group here

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batch = await consumer.getmany(
                timeout_ms=self.poll_timeout_ms, max_records=self.max_records
            )
            async with self._batch:
                result = await asyncio.to_thread(self._apply_batch, batch)
                await self._commit(consumer, result.commit)
                owned = consumer.assignment()
                for tp, offset in result.rewind.items():
                    if tp in owned:  # else its new owner starts from the committed offset
                        consumer.seek(tp, offset)
            for outcome in result.outcomes:
                self.metrics.events.labels(self.group_id, outcome).inc()
            self._parked_unknown |= "parked" in result.outcomes
            await self._count_parked()
            await self._update_lag(consumer)
            if result.rewind:  # the database is away: wait longer each time it still is
                await self._pause(self._retry_delay)
                self._retry_delay = min(self._retry_delay * 2, self.backoff_max)
            else:
                self._retry_delay = self.backoff_initial

    async def _commit(
        self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]
    ) -> None:
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced under the batch: its new owner re-reads from the last
            # committed offset, and the inbox turns what we applied into duplicates.
            log.warning("consumer group %s: offsets not committed: %s", self.group_id, exc)

    def _apply_batch(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> BatchResult:
        result = BatchResult()
        for tp, records in batch.items():
            if isinstance(self.handler, KeyedHandler):
                self._apply_each(self.handler, tp, records, result)
                continue
            try:
                outcomes = self._apply_together(self.handler, records)
            except TRANSIENT as exc:  # the whole batch rolled back: start it again
                log.warning("consumer group %s: %s at %s; will retry", self.group_id, exc, tp)
                result.rewind[tp] = records[0].offset
                continue
            result.outcomes += outcomes
            result.commit[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
        return result

    def _apply_together(self, handler: Handler, records: list[ConsumerRecord]) -> list[Outcome]:
        """A partition's batch in one transaction: one commit (one fsync on SQLite) per batch
        rather than per event.

        First without a savepoint per event (two statements fewer per event, which on
        PostgreSQL are two round trips each); if a handler refuses an event, that attempt
        rolls back whole and the batch runs again with a savepoint per event, so the refused
        event alone rolls back and is parked in the same transaction as the others' effects."""
        try:
            return self._apply_in_one_transaction(handler, records, savepoints=False)
        except _Refused:
            return self._apply_in_one_transaction(handler, records, savepoints=True)

    def _apply_in_one_transaction(
        self, handler: Handler, records: list[ConsumerRecord], *, savepoints: bool
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        with self.engine.begin() as conn:
            for record in records:
                try:
                    event = parse(record.value)
                except MalformedEvent as exc:
                    outcomes.append(self._park(conn, record, f"malformed: {exc}"))
                    continue
                try:
                    with conn.begin_nested() if savepoints else contextlib.nullcontext():
                        place = (record.topic, record.partition, record.offset)
                        if not self.inbox.record(conn, self.group_id, event.id, *place):
                            outcomes.append("duplicate")
                            continue
                        handler(conn, event)
                except TRANSIENT:
                    raise
                except Exception as exc:
                    if not savepoints:  # the whole attempt rolls back; the next has savepoints
                        raise _Refused from exc
                    # The handler refused it: back to the savepoint.
                    log.exception(
                        "consumer group %s: handler failed on %s", self.group_id, event.id
                    )
                    reason = f"handler failed: {type(exc).__name__}: {exc}"
                    outcomes.append(self._park(conn, record, reason))
                    continue
                outcomes.append("processed")
        return outcomes

    def _apply_each(
        self,
        handler: KeyedHandler,
        tp: TopicPartition,
        records: list[ConsumerRecord],
        result: BatchResult,
    ) -> None:
        """A keyed handler commits each event in its own transaction: the offsets follow
        each one, and the database being away stops the partition at that event."""
        for record in records:
            try:
                result.outcomes.append(self._apply_keyed(handler, record))
            except TRANSIENT as exc:
                log.warning("consumer group %s: %s at %s; will retry", self.group_id, exc, tp)
                result.rewind[tp] = record.offset
                return
            result.commit[tp] = OffsetAndMetadata(record.offset + 1, "")

    def _apply_keyed(self, handler: KeyedHandler, record: ConsumerRecord) -> Outcome:
        try:
            event = parse(record.value)
        except MalformedEvent as exc:
            return self._park_alone(record, f"malformed: {exc}")
        try:
            return "processed" if handler.apply(event) else "duplicate"
        except TRANSIENT:
            raise
        except Exception as exc:  # nothing of it committed: parked
            log.exception("consumer group %s: handler failed on %s", self.group_id, event.id)
            return self._park_alone(record, f"handler failed: {type(exc).__name__}: {exc}")

    def _park_alone(self, record: ConsumerRecord, reason: str) -> Outcome:
        with self.engine.begin() as conn:
            return self._park(conn, record, reason)

    def _park(self, conn: sa.Connection, record: ConsumerRecord, reason: str) -> Outcome:
        self.inbox.park(
            conn,
            self.group_id,
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            reason,
        )
        return "parked"

    def _replay(self, parked_id: int) -> Outcome:
        if isinstance(self.handler, KeyedHandler):
            return self._replay_keyed(self.handler, parked_id)
        with self.engine.begin() as conn:
            parked = self.inbox.parked_event(conn, parked_id)
            if parked is None or parked.consumer_group != self.group_id:
                raise ParkedEventNotFound(parked_id)
            if not self.inbox.mark_replayed(conn, parked_id):
                raise AlreadyReplayed(parked_id)
            try:
                event = parse(parked.value)
            except MalformedEvent as exc:
                raise ReplayFailed(f"malformed: {exc}") from exc
            place = (parked.topic, parked.partition, parked.offset)
            if not self.inbox.record(conn, self.group_id, event.id, *place):
                return "duplicate"
            try:
                self.handler(conn, event)
            except Exception as exc:  # rolled back with the mark: it stays parked
                raise ReplayFailed(f"handler failed: {type(exc).__name__}: {exc}") from exc
        return "processed"

    def _replay_keyed(self, handler: KeyedHandler, parked_id: int) -> Outcome:
        # The effect commits in the handler's own transaction, so the mark follows it: a
        # replay that dies in between is run again, and the effect's key makes it a no-op.
        with self.engine.connect() as conn:
            parked = self.inbox.parked_event(conn, parked_id)
        if parked is None or parked.consumer_group != self.group_id:
            raise ParkedEventNotFound(parked_id)
        if parked.replayed_at is not None:
            raise AlreadyReplayed(parked_id)
        try:
            event = parse(parked.value)
        except MalformedEvent as exc:
            raise ReplayFailed(f"malformed: {exc}") from exc
        try:
            applied = handler.apply(event)
        except Exception as exc:
            raise ReplayFailed(f"handler failed: {type(exc).__name__}: {exc}") from exc
        with self.engine.begin() as conn:
            if not self.inbox.mark_replayed(conn, parked_id):
                raise AlreadyReplayed(parked_id)
        return "processed" if applied else "duplicate"

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue  # no fetch answered for it yet
            try:
                position = await consumer.position(tp)
            except IllegalStateError:
                continue  # revoked meanwhile
            self.metrics.lag.labels(self.group_id, tp.topic, str(tp.partition)).set(
                max(highwater - position, 0)
            )

    async def _count_parked(self) -> None:
        if not self._parked_unknown:
            return
        try:
            waiting = await asyncio.to_thread(self._waiting)
        except sa.exc.DBAPIError as exc:  # the DB is away: counted again after the next poll
            log.warning("consumer group %s: parked events not counted: %s", self.group_id, exc)
            return
        self.metrics.parked.labels(self.group_id).set(waiting)
        self._parked_unknown = False

    def _waiting(self) -> int:
        with self.engine.connect() as conn:
            return self.inbox.waiting_count(conn, self.group_id)

    def _forget_lag(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(self.group_id, tp.topic, str(tp.partition))

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


class _HandOver(ConsumerRebalanceListener):
    """Before partitions are given up, wait for the batch in progress to be applied and
    committed, so their next owner starts after it rather than redoing it."""

    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.runner._batch:
            self.runner._forget_lag(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.runner.assignments += 1
