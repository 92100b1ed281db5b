"""Topics created up front, with the partition count the owner chooses: a topic created by
its first produce gets the broker's default instead, and its first messages wait for it."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Creates the topics that do not exist yet; an existing one keeps its partitions (the
    broker answers TOPIC_ALREADY_EXISTS for it, which is what we want)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        await admin.create_topics([NewTopic(n, partitions, replication_factor=1) for n in names])
    finally:
        await admin.close()
