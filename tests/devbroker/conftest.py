"""Fixtures: a dev broker on a free port with a temporary data dir, in this event loop.

Group timings are shortened (session timeouts from 100 ms) so rebalances happen in
fractions of a second; tests.support.kafka_clients.CLIENT_TIMINGS matches them."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from infra.devbroker import Broker, BrokerConfig


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker_config(tmp_path: Path) -> BrokerConfig:
    return BrokerConfig(
        data_dir=tmp_path / "broker",
        port=free_port(),
        default_partitions=3,
        group_min_session_timeout_ms=100,
        flush_interval_ms=200,
    )


@pytest.fixture
async def broker(broker_config: BrokerConfig) -> AsyncIterator[Broker]:
    running = Broker(broker_config)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def bootstrap(broker: Broker) -> str:
    return f"127.0.0.1:{broker.port}"


@pytest.fixture
async def producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await client.start()
    try:
        yield client
    finally:
        await client.stop()
