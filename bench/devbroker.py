"""Dev broker benchmark: aiokafka throughput and end-to-end latency, in one run.

    .venv/bin/python bench/devbroker.py [--messages 50000] [--size 1024] [--rate 1000]

Starts `shop broker` in its own process on a free port with a temporary data dir
(or uses --bootstrap to measure any Kafka-protocol broker, e.g. the compose Kafka)
and prints what it measured next to the targets. It is a script, not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

TARGET_MSGS_PER_S = 20_000
TARGET_P99_MS = 50.0
_STAMP = struct.Struct(">d")


@contextlib.asynccontextmanager
async def shop_broker() -> AsyncIterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="devbroker-bench-") as data_dir:
        shop = Path(sys.executable).parent / "shop"
        process = await asyncio.create_subprocess_exec(
            str(shop),
            "broker",
            "--port",
            str(port),
            "--data-dir",
            data_dir,
            "--default-partitions",
            "1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.readline(), 30)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            process.send_signal(signal.SIGTERM)
            await process.wait()


async def produce_burst(bootstrap: str, topic: str, count: int, size: int) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    payload = os.urandom(size)
    try:
        started = time.perf_counter()
        pending = [await producer.send(topic, payload, partition=0) for _ in range(count)]
        await asyncio.gather(*pending)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def consume_burst(bootstrap: str, topic: str, count: int) -> float:
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


async def produce_while_consuming(bootstrap: str, topic: str, count: int, size: int) -> float:
    """Both sides at once, as in a running system: until the last message is consumed."""
    started = time.perf_counter()
    await asyncio.gather(
        produce_burst(bootstrap, topic, count, size), consume_burst(bootstrap, topic, count)
    )
    return time.perf_counter() - started


async def latency_run(bootstrap: str, topic: str, rate: int, seconds: float, size: int) -> list:
    """Paced sends stamped with the send time; the consumer tails the partition."""
    count = int(rate * seconds)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
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
        await asyncio.sleep(0.2)
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


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        bootstrap = args.bootstrap or await stack.enter_async_context(shop_broker())
        n, size = args.messages, args.size
        produced_s = await produce_burst(bootstrap, "bench-throughput", n, size)
        consumed_s = await consume_burst(bootstrap, "bench-throughput", n)
        both_s = await produce_while_consuming(bootstrap, "bench-both", n, size)
        latencies = await latency_run(bootstrap, "bench-latency", args.rate, args.seconds, size)
    print(f"broker: {args.bootstrap or 'shop broker (dev broker, separate process)'}")
    print(f"{n:,} messages of {size} B, aiokafka {_aiokafka_version()}")
    throughput_line("produce", n, size, produced_s)
    throughput_line("consume", n, size, consumed_s)
    throughput_line("both", n, size, both_s, "produced and consumed concurrently; ")
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    print(
        f"end-to-end latency at {args.rate:,} msgs/s over {len(latencies):,} messages: "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {max(latencies):.2f} ms, "
        f"mean {statistics.fmean(latencies):.2f} ms"
    )
    print(f"p99 target <= {TARGET_P99_MS:.0f} ms: x{TARGET_P99_MS / p99:.2f} headroom")


def throughput_line(label: str, count: int, size: int, seconds: float, note: str = "") -> None:
    rate = count / seconds
    print(
        f"{label:<8} {rate:>10,.0f} msgs/s {count * size / 1e6 / seconds:7.1f} MB/s  "
        f"({note}target >= {TARGET_MSGS_PER_S:,}: x{rate / TARGET_MSGS_PER_S:.2f})"
    )


def _aiokafka_version() -> str:
    import aiokafka

    return aiokafka.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="measure this broker instead of starting one")
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rate", type=int, default=1_000, help="msgs/s for the latency run")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the latency run")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
