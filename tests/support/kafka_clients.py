"""Small helpers around aiokafka clients shared by the tests."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.structs import ConsumerRecord, TopicPartition

# Short group timings, so a rebalance takes a fraction of a second; both test brokers accept
# sessions from 100 ms (group.min.session.timeout.ms).
CLIENT_TIMINGS: dict[str, Any] = {
    "session_timeout_ms": 1500,
    "heartbeat_interval_ms": 100,
    "retry_backoff_ms": 50,
    "metadata_max_age_ms": 5000,
}


async def consume(consumer: AIOKafkaConsumer, count: int, within: float = 10.0) -> list:
    received: list[ConsumerRecord] = []
    async with asyncio.timeout(within):
        while len(received) < count:
            batches = await consumer.getmany(timeout_ms=100)
            for messages in batches.values():
                received.extend(messages)
    return received


async def end_offsets(
    make_consumer: Callable[..., AIOKafkaConsumer], topic: str, partitions: int = 1
) -> dict[int, int]:
    """Partition -> end offset, as a client sees it (ListOffsets through a consumer)."""
    client = make_consumer()
    await client.start()
    try:
        ends = await client.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await client.stop()
    return {tp.partition: end for tp, end in ends.items()}


async def until(condition, within: float = 10.0) -> None:
    """Wait for a condition that client callbacks and background tasks make true."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - state changes inside aiokafka's tasks
            await asyncio.sleep(0.02)


@dataclasses.dataclass
class RebalanceLog(ConsumerRebalanceListener):
    """Records what an eager rebalance does to one member: revoke all, then assign."""

    events: list[tuple[str, frozenset[TopicPartition]]] = dataclasses.field(default_factory=list)

    async def on_partitions_revoked(self, revoked) -> None:
        self.events.append(("revoked", frozenset(revoked)))

    async def on_partitions_assigned(self, assigned) -> None:
        self.events.append(("assigned", frozenset(assigned)))

    @property
    def assigned(self) -> frozenset[TopicPartition]:
        return next((tps for kind, tps in reversed(self.events) if kind == "assigned"), frozenset())

    def count(self, kind: str) -> int:
        return sum(1 for event_kind, _ in self.events if event_kind == kind)
