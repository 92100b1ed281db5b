"""Dev broker benchmark: the dev broker vs Apache Kafka under the same aiokafka workload, side
by side in one run.

    .venv/bin/python bench/devbroker.py [--messages 50000] [--size 1024] [--rate 1000]
                                        [--only devbroker|apache-kafka] [--bootstrap HOST:PORT]

Starts `shop broker` and then Apache Kafka (infra.kafka, from the cached jars; Java 17+), each
in its own process on a free loopback port with a temporary data dir, one after the other so
they never compete for the CPU. Against each: a warm-up, a produce burst (acks=all), a consume
burst of the same messages, and a paced end-to-end latency run. Prints one table with both and
the ratios, then the targets. `--bootstrap` measures an already-running broker alone instead.
It is a script, not a timed test: nothing here asserts on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import time
import uuid
from dataclasses import dataclass

import aiokafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from brokers import (
    APACHE_KAFKA,
    DEVBROKER,
    Row,
    machine_line,
    measure_started,
    percentile,
    print_side_by_side,
    ratio,
)

from libs.events.topics import create_topics

# The targets, relative to Apache Kafka on the same machine and workload.
TARGET_THROUGHPUT_RATIO = 0.8  # dev broker msgs/s >= 0.8x Kafka's, produce and consume
TARGET_P99_RATIO = 1.0  # dev broker e2e p99 <= Kafka's
ACKS = "all"  # every produce waits for the full ISR (one replica here) on both brokers
# Enough for Kafka's JIT to compile the produce and fetch paths (a cold JVM measures at half
# speed or less), short enough to stay a warm-up: about a second or two on either broker.
WARM_UP_MESSAGES = 20_000
_STAMP = struct.Struct(">d")


@dataclass
class Workload:
    messages: int
    size: int
    rate: int
    seconds: float
    partitions: int


@dataclass
class Figures:
    """What one broker did; rates are derived, so the table and the verdict agree."""

    messages: int
    size: int
    produce_s: float
    consume_s: float
    latencies_ms: list[float]

    @property
    def produce_msgs(self) -> float:
        return self.messages / self.produce_s

    @property
    def consume_msgs(self) -> float:
        return self.messages / self.consume_s

    @property
    def produce_mb(self) -> float:
        return self.produce_msgs * self.size / 1e6

    @property
    def consume_mb(self) -> float:
        return self.consume_msgs * self.size / 1e6

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 0.50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 0.99)


# --- the workload -------------------------------------------------------------------------


def new_producer(bootstrap: str, linger_ms: int) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=linger_ms, max_batch_size=256 * 1024, acks=ACKS
    )


async def warm_up(bootstrap: str, topics: list[str], size: int) -> None:
    """A short produce and consume round on a topic of its own (first connections, code paths,
    Kafka's JIT), and metadata with a leader for every measured topic."""
    warm = topics[0]
    await produce_burst(bootstrap, warm, WARM_UP_MESSAGES, size)
    await consume_burst(bootstrap, warm, WARM_UP_MESSAGES)
    producer = new_producer(bootstrap, linger_ms=0)
    await producer.start()
    try:
        for topic in topics[1:]:
            await producer.partitions_for(topic)
    finally:
        await producer.stop()


async def produce_burst(bootstrap: str, topic: str, count: int, size: int) -> float:
    """Seconds from the first send to the last acknowledgement, all to partition 0."""
    producer = new_producer(bootstrap, linger_ms=5)
    await producer.start()
    payload = os.urandom(size)
    try:
        await producer.partitions_for(topic)  # metadata before the clock starts
        started = time.perf_counter()
        pending = [await producer.send(topic, payload, partition=0) for _ in range(count)]
        await asyncio.gather(*pending)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def consume_burst(bootstrap: str, topic: str, count: int) -> float:
    """Seconds to read `count` messages of partition 0 from the start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        received, started = 0, time.perf_counter()
        while received < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            received += sum(len(messages) for messages in batches.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def latency_run(bootstrap: str, topic: str, workload: Workload) -> list[float]:
    """Paced sends stamped with the send time; a consumer tails the partition and measures
    arrival. Same process, so both stamps come from one clock."""
    rate, size = workload.rate, workload.size
    count = int(rate * workload.seconds)
    producer = new_producer(bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="latest")
    await producer.start()
    await consumer.start()
    latencies: list[float] = []
    try:
        await producer.send_and_wait(topic, b"warm-up", partition=0)
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_end()

        async def tail() -> None:
            while len(latencies) < count:
                batches = await consumer.getmany(timeout_ms=1000)
                now = time.perf_counter()
                for messages in batches.values():
                    latencies.extend(
                        (now - _STAMP.unpack_from(m.value)[0]) * 1000 for m in messages
                    )

        tailing = asyncio.create_task(tail())
        await asyncio.sleep(0.2)  # the tail's first fetch is parked at the end before we send
        padding = b"\x00" * (size - _STAMP.size)
        started = time.perf_counter()
        for number in range(count):
            await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
            await producer.send(topic, _STAMP.pack(time.perf_counter()) + padding, partition=0)
        await asyncio.wait_for(tailing, 30)
    finally:
        await producer.stop()
        await consumer.stop()
    return latencies


async def measure(bootstrap: str, workload: Workload) -> Figures:
    # Fresh names per run: an already-running broker (--bootstrap) may hold older ones.
    run = uuid.uuid4().hex[:8]
    topics = [f"bench-{name}-{run}" for name in ("warm-up", "throughput", "latency")]
    await create_topics(bootstrap, topics, workload.partitions)
    await warm_up(bootstrap, topics, workload.size)
    n, size = workload.messages, workload.size
    produce_s = await produce_burst(bootstrap, topics[1], n, size)
    consume_s = await consume_burst(bootstrap, topics[1], n)
    latencies = await latency_run(bootstrap, topics[2], workload)
    return Figures(n, size, produce_s, consume_s, latencies)


# --- the report ---------------------------------------------------------------------------


ROWS: list[Row] = [
    ("produce msgs/s", lambda f: f.produce_msgs, ",.0f"),
    ("produce MB/s", lambda f: f.produce_mb, ",.1f"),
    ("consume msgs/s", lambda f: f.consume_msgs, ",.0f"),
    ("consume MB/s", lambda f: f.consume_mb, ",.1f"),
    ("e2e p50 ms", lambda f: f.p50_ms, ",.2f"),
    ("e2e p99 ms", lambda f: f.p99_ms, ",.2f"),
]


def print_header(workload: Workload) -> None:
    print(
        f"{workload.messages:,} messages x {workload.size} B, aiokafka {aiokafka.__version__}, "
        f"acks={ACKS}, {workload.partitions} partition(s) per topic, all traffic on partition 0"
    )
    print(
        f"end-to-end latency: {workload.rate:,} msgs/s for {workload.seconds:g} s "
        f"({int(workload.rate * workload.seconds):,} messages), linger_ms=0"
    )
    print(machine_line())
    print()


def print_verdict(results: dict[str, Figures]) -> None:
    print()
    if DEVBROKER not in results or APACHE_KAFKA not in results:
        print("targets: not judged (they compare the dev broker with Apache Kafka; both needed)")
        return
    checks = [
        ("produce msgs/s", lambda f: f.produce_msgs, ">=", TARGET_THROUGHPUT_RATIO),
        ("consume msgs/s", lambda f: f.consume_msgs, ">=", TARGET_THROUGHPUT_RATIO),
        ("e2e p99 ms", lambda f: f.p99_ms, "<=", TARGET_P99_RATIO),
    ]
    print("targets (dev broker / Apache Kafka):")
    for label, value, op, target in checks:
        found = ratio(results, value)
        met = found >= target if op == ">=" else found <= target
        print(f"  {label:<16} {found:5.2f}x  {op} {target:.1f}x   {'met' if met else 'MISSED'}")


# --- main ---------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    workload = Workload(args.messages, args.size, args.rate, args.seconds, args.partitions)
    results: dict[str, Figures] = {}
    if args.bootstrap:
        results[args.bootstrap] = await measure(args.bootstrap, workload)
    else:
        # One after the other: each broker has the machine to itself while it is measured.
        for kind in [args.only] if args.only else [DEVBROKER, APACHE_KAFKA]:
            if (
                figures := await measure_started(
                    kind, workload.partitions, lambda b: measure(b, workload)
                )
            ) is not None:
                results[kind] = figures
    print_header(workload)
    print_side_by_side(results, ROWS)
    print_verdict(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=1024, help="bytes per message")
    parser.add_argument("--rate", type=int, default=1_000, help="msgs/s for the latency run")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the latency run")
    parser.add_argument("--partitions", type=int, default=1, help="partitions per topic")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--only", choices=[DEVBROKER, APACHE_KAFKA], help="measure one broker")
    which.add_argument("--bootstrap", help="measure this running broker alone instead")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
