"""Topics created up front, with the partition count the owner chooses: a topic created by
its first produce gets the broker's default instead, and its first messages wait for it.

Apache Kafka answers CreateTopics once its controller has the topic; the brokers learn of it
a moment later, so a describe (or a consumer's first metadata request) straight after can see
the topic without partitions. `create_topics` returns only when the metadata shows them."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

log = logging.getLogger(__name__)


async def create_topics(
    bootstrap: str, names: list[str], partitions: int, visible_within: float = 10.0
) -> None:
    """Creates the topics that do not exist yet; an existing one keeps its partitions (the
    broker answers TOPIC_ALREADY_EXISTS for it, which is what we want)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        await admin.create_topics([NewTopic(n, partitions, replication_factor=1) for n in names])
        await wait_visible(admin, names, within=visible_within)
    finally:
        await admin.close()


async def wait_visible(admin: AIOKafkaAdminClient, names: list[str], within: float) -> None:
    """Waits until every topic is described with its partitions. A topic still not visible
    after `within` seconds is logged, not raised: clients find it on a later metadata refresh."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    missing = list(names)
    while missing:
        described = await admin.describe_topics(missing)
        missing = [t["topic"] for t in described if t["error_code"] != 0 or not t["partitions"]]
        if not missing:
            return
        if loop.time() >= deadline:
            log.warning("topics not yet in the metadata after %ss: %s", within, missing)
            return
        await asyncio.sleep(0.05)
