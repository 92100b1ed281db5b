"""Small helpers around aiokafka clients shared by the tests."""

from __future__ import annotations

import asyncio
import dataclasses

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.structs import ConsumerRecord, TopicPartition


async def consume(consumer: AIOKafkaConsumer, count: int, within: float = 10.0) -> list:
    received: list[ConsumerRecord] = []
    async with asyncio.timeout(within):
        while len(received) < count:
            batches = await consumer.getmany(timeout_ms=100)
            for messages in batches.values():
                received.extend(messages)
    return received


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
