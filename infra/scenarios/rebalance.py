"""Rebalancing stops consumption: a consumer group under steady load while one member restarts,
as in a rolling deploy, run four ways side by side (eager, static membership, cooperative-sticky,
the KIP-848 consumer protocol). Measured: the longest moment the whole group made no progress,
the partition-seconds during which messages waited on a partition nobody consumed, and how many
rebalance rounds the members that did not restart went through."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import Consumer

from infra.scenarios.table import print_table
from libs.events.topics import wait_visible

DESCRIPTION = (
    "a 3-member group on 6 partitions under steady load while one member restarts: "
    "eager vs static membership vs cooperative-sticky vs KIP-848"
)

MEMBERS = 3
PARTITIONS = 6
RATE = 400  # messages/s, spread evenly over the partitions: ~67/s each, one every ~15 ms
# Brokers started by `shop kafka` / `shop scenario` keep Kafka's group.min.session.timeout.ms
# (6 s), so that is the shortest session every broker accepts; it is also longer than the
# restart gap, which static membership needs to keep the member's place.
SESSION_MS = 6000
# Members learn that a rebalance started from their next heartbeat, so the eager pause grows
# with the interval; 0.5 s keeps Kafka's proportions (a twelfth of the session; Kafka's defaults
# are 3 s in 45 s) while keeping the run short.
HEARTBEAT_MS = 500
FETCH_WAIT_MS = 100
SETTLE_S = 12.0  # a bounded attempt: a group that has no full assignment by then did not work
STEADY_BEFORE_S = 1.0  # measured steady state before the restart
RESTART_GAP_S = 1.0  # the member is down this long, as in a rolling deploy
STEADY_AFTER_S = 4.0  # after the restart: long enough for the slowest protocol to settle
DRAIN_S = 3.0
# A partition fed every ~15 ms that delivers nothing for longer than this had messages waiting;
# shorter gaps are ordinary fetch batching, not a stall.
STALL_ALLOWANCE_S = 0.05
# What a service does with each partition it gives up in a rebalance: finish the batch it holds
# and commit it. On a loopback, with nothing to finish, an eager rebalance costs only a few round
# trips; this is the work that makes it stop real groups, and every mode pays it per partition.
REVOKE_WORK_PER_PARTITION_S = 0.1
CONSUMER_GROUP_HEARTBEAT = 68  # KIP-848's API key; a broker that lacks it speaks classic only

log = logging.getLogger(__name__)


class Member(Protocol):
    """One group member, whatever the client: where it stands and how often it rebalanced."""

    rounds: int  # rebalance rounds (assignments handed to it) since mark()
    revoked: int  # partitions taken from it since mark()
    errors: list[str]

    def assigned(self) -> frozenset[int]: ...
    def mark(self) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class Progress:
    """Every consumed record (partition, offset) and when, from tasks and threads alike."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    times: dict[int, list[float]] = field(default_factory=dict)
    seen: Counter[tuple[int, int]] = field(default_factory=Counter)

    def record(self, partition: int, offset: int) -> None:
        now = time.monotonic()
        with self.lock:
            self.times.setdefault(partition, []).append(now)
            self.seen[(partition, offset)] += 1

    def last(self, partition: int) -> float:
        with self.lock:
            stamps = self.times.get(partition)
            return stamps[-1] if stamps else 0.0

    def window(self, start: float, end: float) -> dict[int, list[float]]:
        with self.lock:
            return {
                p: [start, *(t for t in stamps if start <= t <= end), end]
                for p, stamps in ((p, self.times.get(p, [])) for p in range(PARTITIONS))
            }


@dataclass
class Assignment:
    """Shared by both clients' callbacks: the partitions held, the rounds and revocations."""

    partitions: set[int] = field(default_factory=set)
    rounds: int = 0
    revoked: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, partitions: set[int]) -> None:
        with self.lock:
            self.rounds += 1
            self.partitions |= partitions

    def remove(self, partitions: set[int]) -> None:
        with self.lock:
            self.revoked += len(partitions & self.partitions)
            self.partitions -= partitions

    def snapshot(self) -> frozenset[int]:
        with self.lock:
            return frozenset(self.partitions)

    def mark(self) -> None:
        with self.lock:
            self.rounds = self.revoked = 0


class _Listener(ConsumerRebalanceListener):
    def __init__(self, state: Assignment) -> None:
        self.state = state

    async def on_partitions_revoked(self, revoked) -> None:
        await asyncio.sleep(REVOKE_WORK_PER_PARTITION_S * len(revoked))
        self.state.remove({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned) -> None:
        # Eager hands over the whole assignment each round: replace, do not merge.
        self.state.remove(set(self.state.snapshot()))
        self.state.add({tp.partition for tp in assigned})


class AioMember(Assignment):
    """An aiokafka consumer (classic eager protocol) polling in a task of this event loop."""

    def __init__(self, bootstrap: str, topic: str, group: str, progress: Progress, **extra):
        super().__init__()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=True,
            auto_commit_interval_ms=500,
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
            fetch_max_wait_ms=FETCH_WAIT_MS,
            retry_backoff_ms=50,
            **extra,
        )
        self.topic, self.progress = topic, progress
        self.task: asyncio.Task | None = None

    def assigned(self) -> frozenset[int]:
        return self.snapshot()

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.subscribe([self.topic], listener=_Listener(self))
        self.task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=100)
            for tp, records in batches.items():
                for record in records:
                    self.progress.record(tp.partition, record.offset)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        # Stopping commits what was consumed and, for a dynamic member only, leaves the group.
        await self.consumer.stop()


class ThreadMember(Assignment):
    """A confluent-kafka (librdkafka) consumer polling in a thread of its own: its calls block."""

    def __init__(self, config: dict[str, Any], topic: str, progress: Progress) -> None:
        super().__init__()
        quiet = logging.getLogger(f"{__name__}.librdkafka")
        quiet.propagate = False  # its connection chatter would drown the table; errors are kept
        quiet.addHandler(logging.NullHandler())
        self.config = {**config, "error_cb": self._error, "logger": quiet}
        self.topic, self.progress = topic, progress
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _error(self, error) -> None:
        self.errors.append(str(error))

    def assigned(self) -> frozenset[int]:
        return self.snapshot()

    async def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            consumer = Consumer(self.config)
        except Exception as exc:  # a configuration the client refuses is the row's answer
            self.errors.append(str(exc))
            return
        try:
            consumer.subscribe(
                [self.topic],
                on_assign=lambda _c, tps: self.add({tp.partition for tp in tps}),
                on_revoke=lambda _c, tps: self._give_up({tp.partition for tp in tps}),
                on_lost=lambda _c, tps: self.remove({tp.partition for tp in tps}),
            )
            while not self.stopping.is_set():
                for message in consumer.consume(num_messages=500, timeout=0.05):
                    if message.error() is None:
                        partition, offset = message.partition(), message.offset()
                        assert partition is not None and offset is not None  # a fetched record
                        self.progress.record(partition, offset)
                    else:
                        self.errors.append(str(message.error()))
        except Exception as exc:
            self.errors.append(str(exc))
        finally:
            consumer.close()  # commits, gives its partitions up and leaves the group

    def _give_up(self, partitions: set[int]) -> None:
        # The callback runs on the polling thread: while it works, this member consumes nothing.
        time.sleep(REVOKE_WORK_PER_PARTITION_S * len(partitions))
        self.remove(partitions)

    async def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            await asyncio.to_thread(self.thread.join, 15)


@dataclass(frozen=True)
class Mode:
    name: str
    client: str  # "aiokafka" or "librdkafka": the two need different members
    static: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    needs_api: int | None = None  # an API key the broker must advertise


MODES = (
    Mode("eager, dynamic members (aiokafka)", "aiokafka"),
    Mode("static membership (aiokafka)", "aiokafka", static=True),
    Mode(
        "cooperative-sticky, KIP-429 (librdkafka)",
        "librdkafka",
        config={
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": SESSION_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
        },
    ),
    Mode(
        "consumer protocol, KIP-848 (librdkafka)",
        "librdkafka",
        # Session and heartbeat belong to the broker under KIP-848; the client may not set them.
        config={"group.protocol": "consumer"},
        needs_api=CONSUMER_GROUP_HEARTBEAT,
    ),
)


@dataclass
class Outcome:
    mode: Mode
    note: str = ""  # set when the mode could not run: why
    pause_ms: float = 0.0
    stalled_s: float = 0.0
    rounds: int = 0
    revoked: int = 0
    produced: int = 0
    delivered: int = 0
    duplicated: int = 0
    same_partitions_back: bool = False

    @property
    def measured(self) -> bool:
        return not self.note


def member_factory(
    mode: Mode, bootstrap: str, topic: str, group: str, progress: Progress
) -> Callable[[int], Member]:
    def make(index: int) -> Member:
        name = f"member-{index}"
        if mode.client == "aiokafka":
            extra = {"group_instance_id": f"{group}-{name}"} if mode.static else {}
            return AioMember(bootstrap, topic, group, progress, client_id=name, **extra)
        config = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 500,
            "fetch.wait.max.ms": FETCH_WAIT_MS,
            **mode.config,
        }
        return ThreadMember(config, topic, progress)

    return make


async def advertised_apis(bootstrap: str) -> set[int]:
    """The API keys the broker advertises: one ApiVersions v0 request on a plain connection,
    so what the broker can do is asked, not assumed from which broker it is."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    client_id = b"shop-scenario"
    header = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    async with asyncio.timeout(5.0):
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(struct.pack(">i", len(header)) + header)
            size = struct.unpack(">i", await reader.readexactly(4))[0]
            body = await reader.readexactly(size)
        finally:
            writer.close()
    _correlation, error, count = struct.unpack_from(">ihi", body)
    if error:
        return set()
    return {struct.unpack_from(">h", body, 10 + 6 * i)[0] for i in range(count)}


async def produce_steadily(producer: AIOKafkaProducer, topic: str, stop: asyncio.Event) -> int:
    """RATE messages a second, round-robin over the partitions, until told to stop."""
    start, sent, pending = time.monotonic(), 0, []
    while not stop.is_set():
        due = int((time.monotonic() - start) * RATE)
        while sent < due:
            pending.append(
                await producer.send(topic, str(sent).encode(), partition=sent % PARTITIONS)
            )
            sent += 1
        await asyncio.sleep(0.01)
    await asyncio.gather(*pending)
    return sent


async def settle(members: list[Member], progress: Progress) -> str:
    """Wait for a disjoint cover of the partitions, each one flowing; '' or why it did not."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        held = [m.assigned() for m in members]
        covered = (
            sum(len(h) for h in held) == PARTITIONS and len(frozenset().union(*held)) == PARTITIONS
        )
        now = time.monotonic()
        flowing = all(now - progress.last(p) < 4 * STALL_ALLOWANCE_S for p in range(PARTITIONS))
        if covered and flowing and all(h for h in held):
            return ""
        await asyncio.sleep(0.05)
    errors = sorted({e for m in members for e in m.errors})
    return "; ".join(errors[:2]) or f"the group had no full assignment within {SETTLE_S:.0f} s"


def measure_pauses(progress: Progress, start: float, end: float) -> tuple[float, float]:
    """(longest gap with no record consumed anywhere in the group, stalled partition-seconds)."""
    per_partition = progress.window(start, end)
    merged = sorted({t for stamps in per_partition.values() for t in stamps})
    longest = max((b - a for a, b in itertools.pairwise(merged)), default=0.0)
    stalled = sum(
        max(0.0, b - a - STALL_ALLOWANCE_S)
        for stamps in per_partition.values()
        for a, b in itertools.pairwise(stamps)
    )
    return longest * 1000, stalled


async def restart_one(members: list[Member], make: Callable[[int], Member]) -> frozenset[int]:
    """A rolling deploy of the last member: stop it, wait, start it again. Its partitions."""
    victim = members[-1]
    held = victim.assigned()
    await victim.stop()
    await asyncio.sleep(RESTART_GAP_S)
    members[-1] = make(len(members) - 1)
    await members[-1].start()
    return held


async def drain(progress: Progress, produced: int) -> None:
    deadline = time.monotonic() + DRAIN_S
    # The count grows in consumer tasks and threads: there is no event to wait on.
    while len(progress.seen) < produced and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def run_mode(mode: Mode, bootstrap: str, admin: AIOKafkaAdminClient) -> Outcome:
    suffix = uuid.uuid4().hex[:8]
    topic, group = f"scenario-rebalance-{suffix}", f"scenario-rebalance-{suffix}"
    await admin.create_topics([NewTopic(topic, PARTITIONS, replication_factor=1)])
    await wait_visible(admin, [topic], within=10.0)
    progress, outcome = Progress(), Outcome(mode)
    make = member_factory(mode, bootstrap, topic, group, progress)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    members: list[Member] = []
    stop_producing = asyncio.Event()
    producing: asyncio.Task | None = None
    await producer.start()
    try:
        producing = asyncio.create_task(produce_steadily(producer, topic, stop_producing))
        members.extend(make(i) for i in range(MEMBERS))
        await asyncio.gather(*(m.start() for m in members))
        began = time.monotonic()
        why = await settle(members, progress)
        log.info("%s: settled in %.1f s", mode.name, time.monotonic() - began)
        if why:
            outcome.note = why
            return outcome
        await measured_restart(members, make, progress, outcome)
        stop_producing.set()
        outcome.produced = await producing
        await drain(progress, outcome.produced)
        outcome.delivered = len(progress.seen)
        outcome.duplicated = sum(progress.seen.values()) - len(progress.seen)
        return outcome
    finally:
        stop_producing.set()
        await asyncio.gather(*(m.stop() for m in members), return_exceptions=True)
        if producing is not None:
            await asyncio.gather(producing, return_exceptions=True)
        await producer.stop()


async def measured_restart(
    members: list[Member], make: Callable[[int], Member], progress: Progress, outcome: Outcome
) -> None:
    for member in members:
        member.mark()
    start = time.monotonic()
    await asyncio.sleep(STEADY_BEFORE_S)
    held = await restart_one(members, make)
    await asyncio.sleep(STEADY_AFTER_S)
    outcome.pause_ms, outcome.stalled_s = measure_pauses(progress, start, time.monotonic())
    others = members[:-1]
    outcome.rounds = sum(m.rounds for m in others)
    outcome.revoked = sum(m.revoked for m in others)
    outcome.same_partitions_back = members[-1].assigned() == held


async def try_mode(mode: Mode, bootstrap: str, admin: AIOKafkaAdminClient, apis: set[int]):
    if mode.needs_api is not None and mode.needs_api not in apis:
        return Outcome(
            mode,
            note="not supported by this broker: classic group protocol only "
            f"(ApiVersions lacks ConsumerGroupHeartbeat, key {mode.needs_api})",
        )
    try:
        outcome = await run_mode(mode, bootstrap, admin)
    except Exception as exc:  # one mode failing must not hide the others' rows
        log.exception("mode %s failed", mode.name)
        return Outcome(mode, note=f"failed: {type(exc).__name__}: {exc}")
    if outcome.note and mode.client == "librdkafka":
        outcome.note = f"not supported by this broker: {outcome.note}"
    elif outcome.note:
        outcome.note = f"did not settle: {outcome.note}"
    return outcome


HEADERS = [
    "mode",
    "longest pause ms",
    "stalled partition-s",
    "rebalances seen by others",
    "delivered/duplicated",
]


def row(outcome: Outcome) -> list[str]:
    if not outcome.measured:
        # The note goes last, where a long cell does not widen the measured columns.
        return [outcome.mode.name, "-", "-", "-", outcome.note]
    return [
        outcome.mode.name,
        f"{outcome.pause_ms:.0f}",
        f"{outcome.stalled_s:.2f}",
        f"{outcome.rounds} rounds, {outcome.revoked} partitions revoked",
        f"{outcome.delivered}/{outcome.produced} delivered, {outcome.duplicated} duplicated",
    ]


def reading(eager: Outcome, static: Outcome, cooperative: Outcome) -> str:
    if not (eager.measured and static.measured):
        return "reading: eager or static did not run, so there is nothing to compare"
    text = (
        f"reading: a restart stopped the eager group for {eager.pause_ms:.0f} ms "
        f"({eager.rounds} rebalance rounds for the members that stayed); with static membership "
        f"they never stopped (longest group pause {static.pause_ms:.0f} ms, {static.rounds} "
        f"rounds) and only the restarted member's partitions waited for it "
        f"({static.stalled_s:.2f} partition-s)"
    )
    if static.same_partitions_back:
        text += ", which got the same partitions back"

    if cooperative.measured:
        text += (
            f"; cooperative-sticky moved only what had to move "
            f"({cooperative.revoked} partitions revoked from the others)"
        )
    return text + "."


@contextlib.contextmanager
def quiet_aiokafka():
    """aiokafka logs every heartbeat that meets a rebalance and every coordinator still loading:
    here those are the lesson or transient, and would bury the table; a member that cannot
    settle still says so in its row."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def run(bootstrap: str) -> int:
    apis = await advertised_apis(bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        with quiet_aiokafka():
            outcomes = [await try_mode(mode, bootstrap, admin, apis) for mode in MODES]
    finally:
        await admin.close()
    print_table(HEADERS, [row(o) for o in outcomes])
    eager, static, cooperative, _kip848 = outcomes
    print(reading(eager, static, cooperative))
    # The lesson is that a static member's restart moves nothing: the others see no rebalance
    # round where the eager group sees some. The pause is printed but not judged: on a busy
    # machine a scheduling hiccup alone can make a static group's longest gap the longer one.
    shown = eager.measured and static.measured and static.rounds < eager.rounds
    return 0 if shown else 1
