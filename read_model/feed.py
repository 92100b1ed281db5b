"""One generation of views being fed: its store, its projector, its consumer group.

The consumer runner's handler runs in a worker thread (libs/events/consumer.py); the store's
client is async and lives on the process's event loop, so the handler hands each event to
the loop and waits for the projector's answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry
from pymongo.errors import ConnectionFailure

from infra.settings import ReadModelSettings
from libs.events.consumer import ConsumerRunner, KeyedHandler
from libs.events.envelope import Event
from libs.events.inbox import Inbox
from read_model import views
from read_model.cache import ViewCache
from read_model.generations import Generations, events, group_of
from read_model.metrics import read_model_metrics
from read_model.service_layer import Projector, StoreUnavailable
from read_model.store import ViewStore
from read_model.store.factory import make_store

TOPIC_PARTITIONS = 3
# How often a rebuild asks whether its group has caught up.
POLL_SECONDS = 0.2
# How long the handler waits for the loop to apply one event before the runner retries it.
APPLY_TIMEOUT = 30.0


@dataclass
class Feed:
    generation: str
    store: ViewStore
    projector: Projector
    runner: ConsumerRunner

    async def stop(self) -> None:
        await self.runner.stop()

    async def close(self) -> None:
        await self.store.close()

    async def retire(self) -> None:
        """Stops its group, drops its generation's views, closes its store."""
        await self.stop()
        await self.store.drop()
        await self.close()


def topics(settings: ReadModelSettings) -> list[str]:
    return [settings.kafka_topic_prefix + topic for topic in views.TOPICS]


async def open_feed(
    settings: ReadModelSettings,
    generation: str,
    generations: Generations,
    registry: CollectorRegistry,
    cache: ViewCache | None,
    *,
    live: bool = True,
) -> Feed:
    """The generation's store, started, and its consumer group, not started yet. `live`:
    False for a rebuild's feed until it is swapped in (read_model/rebuild.py)."""
    store = make_store(settings.read_model_store, generation)
    await store.start()
    uid = await asyncio.to_thread(generations.uid, generation)
    projector = Projector(
        store, f"{generation}-{uid}", read_model_metrics(registry), cache, live=live
    )
    loop = asyncio.get_running_loop()

    def apply(event: Event) -> bool:
        future = asyncio.run_coroutine_threadsafe(projector.apply(event), loop)
        try:
            return future.result(APPLY_TIMEOUT)
        except (ConnectionFailure, TimeoutError) as exc:
            future.cancel()
            raise StoreUnavailable(exc) from exc

    runner = ConsumerRunner(
        settings.kafka_bootstrap_servers,
        group_of(settings.read_model_group, generation),
        topics(settings),
        generations.engine,
        Inbox(events),
        KeyedHandler(apply),
        group_instance_id=settings.read_model_group_instance_id,
        topic_partitions=TOPIC_PARTITIONS,
        registry=registry,
    )
    return Feed(generation, store, projector, runner)


async def wait_committed(
    settings: ReadModelSettings,
    group: str,
    ends: dict[TopicPartition, int],
    deadline: float,
    progress: Callable[[int], None],
) -> None:
    """Waits until `group` has committed everything up to `ends`, telling `progress` how many
    messages are still missing at each look; TimeoutError past `deadline` (monotonic). One
    client for the whole wait: it asks the group coordinator every POLL_SECONDS."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while True:
            missing = 0
            for tp, end in ends.items():
                missing += max(0, end - (await consumer.committed(tp) or 0))
            progress(missing)
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{missing} events still to replay")
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await consumer.stop()


async def end_offsets(settings: ReadModelSettings) -> dict[TopicPartition, int]:
    """Every partition's end offset of the topics the read model reads, now (a topic not
    created yet has none)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000
    )
    await admin.start()
    try:
        described = await admin.describe_topics(topics(settings))
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        if topic["error_code"] == 0
        for partition in topic["partitions"]
    ]
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()
