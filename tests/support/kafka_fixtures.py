"""Kafka fixtures for every test that talks to a broker (a pytest plugin, see tests/conftest.py):
a test that asks for `kafka_broker` (or `bootstrap`) runs once against the dev broker and once
against Apache Kafka 4.x, through real sockets and real clients. Each broker is one process for
the whole session; tests keep out of each other's way by naming their topics and groups
uniquely.

Apache Kafka needs Java 17 (and, once, Maven to fetch its jars): without them its half of the
suite skips with the reason, and fails under SHOP_TEST_REQUIRE_SERVERS=1 (CI)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from libs.events.topics import wait_visible
from tests.support.brokers import KINDS, BrokerUnderTest, KafkaUnavailable, start_broker
from tests.support.kafka_clients import CLIENT_TIMINGS


@pytest.fixture(scope="session", params=KINDS)
def kafka_broker(request, tmp_path_factory) -> Iterator[BrokerUnderTest]:
    kind = request.param
    try:
        running = start_broker(kind, tmp_path_factory.mktemp(kind))
    except KafkaUnavailable as exc:
        if os.environ.get("SHOP_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail(f"{kind} could not start: {exc}")
        pytest.skip(f"{kind} cannot run on this machine: {exc}")
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture
def bootstrap(kafka_broker: BrokerUnderTest) -> str:
    return kafka_broker.bootstrap


@pytest.fixture
def unique() -> Callable[[str], str]:
    """A name of this test's own: the brokers live for the whole session."""
    suffix = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{suffix}"


@pytest.fixture
async def admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def new_topic(admin, unique) -> Callable[[str, int], Awaitable[str]]:
    """Creates a uniquely named topic with this many partitions; returns its name."""

    async def create(name: str, partitions: int) -> str:
        topic = unique(name)
        await admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
        await wait_visible(admin, [topic], within=10.0)
        return topic

    return create


@pytest.fixture
def make_consumer(bootstrap: str) -> Callable[..., AIOKafkaConsumer]:
    def make(*topics: str, **options: Any) -> AIOKafkaConsumer:
        settings = {"auto_offset_reset": "earliest", **CLIENT_TIMINGS, **options}
        return AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, **settings)

    return make


@pytest.fixture
async def producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await client.start()
    try:
        yield client
    finally:
        await client.stop()
