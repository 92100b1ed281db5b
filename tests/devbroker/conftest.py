"""Fixtures: a dev broker on a free port with a temporary data dir, in this event loop.

Group timings are shortened (session timeouts from 100 ms) so rebalances happen in
fractions of a second; tests.support.kafka_clients.CLIENT_TIMINGS matches them. The plugin's
`producer` fixture (tests/support/kafka_fixtures.py) connects to this `bootstrap` here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infra.devbroker import Broker, BrokerConfig
from infra.supervisor import free_port


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
