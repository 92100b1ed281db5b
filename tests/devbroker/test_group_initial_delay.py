"""The dev broker's group.initial.rebalance.delay.ms, set through its BrokerConfig: the broker
suite runs both brokers with no delay, so this is tested here on an in-process broker."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from infra.devbroker import Broker
from tests.support.kafka_wire import WireClient

JOIN = 11


@pytest.fixture
def delayed_config(broker_config):
    return dataclasses.replace(broker_config, group_initial_rebalance_delay_ms=400)


def join_body(group: str) -> dict:
    return {
        "group_id": group,
        "session_timeout": 5000,
        "rebalance_timeout": 5000,
        "member_id": "",
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": b"subscription"}],
    }


async def test_the_initial_rebalance_delay_gathers_early_joiners_into_one_generation(
    delayed_config,
):
    broker = Broker(delayed_config)
    await broker.start()
    try:
        first, second = [await WireClient.connect(broker.port) for _ in range(2)]
        joins = await asyncio.gather(
            first.request(JOIN, 3, join_body("g")), second.request(JOIN, 3, join_body("g"))
        )
        await first.close()
        await second.close()
    finally:
        await broker.stop()
    assert [j["generation_id"] for j in joins] == [1, 1]
    assert sorted(len(j["members"]) for j in joins) == [0, 2]
