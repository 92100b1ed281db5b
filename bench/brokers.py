"""The two brokers the benchmarks compare, each started in its own process on a free loopback
port with a temporary data dir: `shop broker` (the dev broker) and Apache Kafka (infra.kafka,
from the cached jars; Java 17+). Shared by bench/devbroker.py and bench/events.py, which run
as scripts (bench/ is their sys.path[0], not a package), hence `from brokers import ...`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.kafka.runtime import KafkaNode, check_java, default_home, fetch
from infra.settings import Settings
from infra.supervisor import free_port

DEVBROKER, APACHE_KAFKA = "devbroker", "apache-kafka"
LABELS = {DEVBROKER: "dev broker", APACHE_KAFKA: "Apache Kafka"}


@contextlib.asynccontextmanager
async def devbroker(partitions: int) -> AsyncIterator[str]:
    """`shop broker` in its own process, exactly as a developer runs it."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="devbroker-bench-") as data_dir:
        shop = Path(sys.executable).parent / "shop"
        process = await asyncio.create_subprocess_exec(
            str(shop), "broker", "--port", str(port), "--data-dir", data_dir,
            "--default-partitions", str(partitions),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert process.stdout is not None
        # The CLI prints one line once it listens: the broker is ready from then on.
        if not await asyncio.wait_for(process.stdout.readline(), 30):
            raise RuntimeError(f"`shop broker` exited with {await process.wait()} at start-up")
        try:
            yield f"127.0.0.1:{port}"
        finally:
            process.send_signal(signal.SIGTERM)
            code = await process.wait()
            if code != 0:
                print(f"warning: the dev broker exited with {code}", file=sys.stderr)


@contextlib.asynccontextmanager
async def apache_kafka(partitions: int) -> AsyncIterator[str]:
    """One KRaft node from the cached jars; KafkaUnavailable says what this machine lacks."""
    check_java()
    settings = Settings()
    lib = fetch(settings.kafka_home or default_home(), settings.kafka_version)
    with tempfile.TemporaryDirectory(prefix="kafka-bench-") as data_dir:
        port = free_port()
        node = KafkaNode(
            lib,
            Path(data_dir) / "data",
            port=port,
            controller_port=free_port_but(port),
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


def free_port_but(taken: int) -> int:
    """A free port other than `taken`: two quick free_port() calls may return the same one."""
    while (port := free_port()) == taken:
        pass
    return port


BROKERS: dict[str, Callable[[int], contextlib.AbstractAsyncContextManager[str]]] = {
    DEVBROKER: devbroker,
    APACHE_KAFKA: apache_kafka,
}


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create the topics up front, so no measurement pays for auto-creation."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
    finally:
        await admin.close()
