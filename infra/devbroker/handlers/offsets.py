"""OffsetCommit and OffsetFetch: where a group resumes after a restart or rebalance."""

from __future__ import annotations

from typing import Any

from infra.devbroker.context import RequestContext

UNKNOWN_TOPIC_OR_PARTITION = 3
NO_OFFSET = -1


async def offset_commit(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    broker = ctx.broker
    error = broker.groups.check_commit(
        request["group_id"], request["generation_id_or_member_epoch"], request["member_id"]
    )
    topics = []
    for topic in request["topics"]:
        partitions = []
        for part in topic["partitions"]:
            code = error
            if not code and broker.topics.get(topic["name"], part["partition_index"]) is None:
                code = UNKNOWN_TOPIC_OR_PARTITION
            if not code:
                broker.offsets.commit(
                    request["group_id"],
                    topic["name"],
                    part["partition_index"],
                    part["committed_offset"],
                    part["committed_metadata"],
                )
            partitions.append({"partition_index": part["partition_index"], "error_code": code})
        topics.append({"name": topic["name"], "partitions": partitions})
    broker.offsets.sync()
    return {"topics": topics}


async def offset_fetch(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    offsets = ctx.broker.offsets
    group_id = request["group_id"]
    wanted = request["topics"]
    if wanted is None:  # v2+: null means every partition the group has committed
        by_topic: dict[str, list[int]] = {}
        for topic, partition in offsets.committed(group_id):
            by_topic.setdefault(topic, []).append(partition)
        wanted = [{"name": t, "partition_indexes": sorted(p)} for t, p in by_topic.items()]
    topics = []
    for topic in wanted:
        partitions = []
        for index in topic["partition_indexes"]:
            committed = offsets.fetch(group_id, topic["name"], index)
            offset, metadata = committed if committed else (NO_OFFSET, "")
            partitions.append(
                {"partition_index": index, "committed_offset": offset, "metadata": metadata}
            )
        topics.append({"name": topic["name"], "partitions": partitions})
    return {"topics": topics}
