"""The two brokers the benchmarks compare, each started in its own process on a free loopback
port with a temporary data dir: `shop broker` (the dev broker) and Apache Kafka (infra.kafka,
from the cached jars; Java 17+); and the side-by-side report both benchmarks print. Shared
by bench/devbroker.py and bench/events.py, which run as scripts (bench/ is their
sys.path[0], not a package), hence `from brokers import ...`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from infra.kafka.runtime import KafkaNode, KafkaUnavailable, installed_jars
from infra.settings import Settings
from infra.supervisor import BROKER, Supervisor, free_port, free_ports

DEVBROKER, APACHE_KAFKA = "devbroker", "apache-kafka"
LABELS = {DEVBROKER: "dev broker", APACHE_KAFKA: "Apache Kafka"}


@contextlib.asynccontextmanager
async def devbroker(partitions: int) -> AsyncIterator[str]:
    """`shop broker` in its own process, under the supervisor `shop up` uses."""
    with tempfile.TemporaryDirectory(prefix="devbroker-bench-") as data_dir:
        supervisor = Supervisor({}, Path(data_dir) / "logs")
        broker = supervisor.start_broker(
            free_port(), Path(data_dir) / "broker", "--default-partitions", str(partitions)
        )
        try:
            await asyncio.to_thread(supervisor.wait_ready)
            yield broker.url
        finally:
            code = (await asyncio.to_thread(supervisor.stop))[BROKER]
            if code != 0:
                print(f"warning: the dev broker exited with {code}", file=sys.stderr)


@contextlib.asynccontextmanager
async def apache_kafka(partitions: int) -> AsyncIterator[str]:
    """One KRaft node from the cached jars; KafkaUnavailable says what this machine lacks."""
    settings = Settings()
    lib = installed_jars(settings.kafka_home, settings.kafka_version)
    with tempfile.TemporaryDirectory(prefix="kafka-bench-") as data_dir:
        port, controller_port = free_ports(2)
        node = KafkaNode(
            lib,
            Path(data_dir) / "data",
            port=port,
            controller_port=controller_port,
            partitions=partitions,
            # A benchmark has one consumer group at most; one offsets partition keeps start-up
            # short.
            offsets_partitions=1,
        )
        # KafkaNode blocks (JVM start, readiness polling): keep it off the event loop.
        await asyncio.to_thread(node.start)
        try:
            await asyncio.to_thread(node.wait_ready, 90)
            yield node.bootstrap
        finally:
            code = await asyncio.to_thread(node.stop)
            if code != 0:
                print(f"warning: Apache Kafka exited with {code}", file=sys.stderr)


BROKERS: dict[str, Callable[[int], contextlib.AbstractAsyncContextManager[str]]] = {
    DEVBROKER: devbroker,
    APACHE_KAFKA: apache_kafka,
}


T = TypeVar("T")
# A table row: its label, how to read the figure off one broker's results, its format.
Row = tuple[str, Callable[[Any], float], str]


async def measure_started(
    kind: str, partitions: int, measure: Callable[[str], Awaitable[T]]
) -> T | None:
    """Start one broker, measure it, stop it; None (and why) when it cannot run here."""
    print(f"measuring: {LABELS[kind]} ...", file=sys.stderr, flush=True)
    try:
        async with BROKERS[kind](partitions) as bootstrap:
            return await measure(bootstrap)
    except KafkaUnavailable as missing:
        print(f"\n{LABELS[kind]} not measured: {missing}\n", file=sys.stderr)
        return None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ratio(results: dict[str, Any], value: Callable[[Any], float]) -> float:
    return value(results[DEVBROKER]) / value(results[APACHE_KAFKA])


def print_side_by_side(results: dict[str, Any], rows: list[Row]) -> None:
    """One column per broker measured, and the dev/kafka ratio when both were."""
    if not results:
        print("nothing measured")
        return
    width = max(len(label) for label, _, _ in rows) + 2
    columns = [LABELS.get(kind, kind) for kind in results]
    both = DEVBROKER in results and APACHE_KAFKA in results
    if both:
        columns.append("ratio dev/kafka")
    print(" " * width + "".join(f"{column:>18}" for column in columns))
    for label, value, spec in rows:
        cells = [format(value(figures), spec) for figures in results.values()]
        if both:
            cells.append(f"{ratio(results, value):.2f}")
        print(f"{label:<{width}}" + "".join(f"{cell:>18}" for cell in cells))


def machine_line() -> str:
    # The brokers and the clients share this machine's cores: other load skews the figures.
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"machine: {os.cpu_count()} cores, load average {load} (1/5/15 min) at the end"
