"""Metadata, CreateTopics, FindCoordinator and InitProducerId: what a client asks
before it produces or consumes. There is one broker, so it leads every partition,
coordinates every group and is the controller."""

from __future__ import annotations

from typing import Any

from infra.devbroker.context import RequestContext
from infra.devbroker.topics import TopicError, check_topic_name

UNSUPPORTED_VERSION = 35
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_REPLICATION_FACTOR = 38
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_CONFIG = 40
COORDINATOR_KEY_TYPE_GROUP = 0


async def metadata(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    broker, config = ctx.broker, ctx.broker.config
    requested = request["topics"]
    names = list(broker.topics.partitions) if requested is None else [t["name"] for t in requested]
    auto_create = config.auto_create_topics and request.get("allow_auto_topic_creation", True)
    topics = []
    for name in names:
        error = 0
        if name not in broker.topics.partitions:
            try:
                check_topic_name(name)
                if not auto_create:
                    raise TopicError(UNKNOWN_TOPIC_OR_PARTITION, "unknown topic")
                broker.topics.create(name, config.default_partitions)
            except TopicError as exc:
                error = exc.code
        topics.append(_topic_metadata(ctx, name, error))
    return {
        "brokers": [{"node_id": config.node_id, "host": config.advertised, "port": broker.port}],
        "cluster_id": config.cluster_id,
        "controller_id": config.node_id,
        "topics": topics,
    }


def _topic_metadata(ctx: RequestContext, name: str, error: int) -> dict[str, Any]:
    node = ctx.broker.config.node_id
    logs = ctx.broker.topics.partitions.get(name, []) if not error else []
    partitions = [
        {"partition_index": index, "leader_id": node, "replica_nodes": [node], "isr_nodes": [node]}
        for index in range(len(logs))
    ]
    return {"error_code": error, "name": name, "is_internal": False, "partitions": partitions}


async def create_topics(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    results = []
    for topic in request["topics"]:
        code, message = _create_one(ctx, topic, request["validate_only"])
        results.append({"name": topic["name"], "error_code": code, "error_message": message})
    return {"topics": results}


def _create_one(
    ctx: RequestContext, topic: dict[str, Any], validate_only: bool
) -> tuple[int, str | None]:
    store, config = ctx.broker.topics, ctx.broker.config
    configs = {c["name"]: c["value"] for c in topic["configs"]}
    if "compact" in (configs.get("cleanup.policy") or ""):
        return INVALID_CONFIG, "log compaction is not supported by the dev broker"
    if topic["replication_factor"] not in (-1, 1):
        return INVALID_REPLICATION_FACTOR, "the dev broker is one node: replication factor 1"
    partitions = topic["num_partitions"]
    if topic["assignments"]:
        if any(a["broker_ids"] != [config.node_id] for a in topic["assignments"]):
            return INVALID_REPLICA_ASSIGNMENT, f"the only broker is {config.node_id}"
        partitions = len(topic["assignments"])
    if partitions == -1:
        partitions = config.default_partitions
    try:
        check_topic_name(topic["name"])
        if topic["name"] in store.partitions:
            raise TopicError(36, f"topic {topic['name']!r} already exists")
        if not validate_only:
            store.create(topic["name"], partitions)
    except TopicError as exc:
        return exc.code, str(exc)
    return 0, None


async def find_coordinator(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    config = ctx.broker.config
    if request.get("key_type", COORDINATOR_KEY_TYPE_GROUP) != COORDINATOR_KEY_TYPE_GROUP:
        # Transaction coordinators do not exist here: transactions are unsupported.
        return {
            "error_code": UNSUPPORTED_VERSION,
            "node_id": -1,
            "host": "",
            "port": -1,
            "error_message": "transactions are not supported by the dev broker",
        }
    return {"node_id": config.node_id, "host": config.advertised, "port": ctx.broker.port}


async def init_producer_id(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    if request["transactional_id"] is not None:
        return {"error_code": UNSUPPORTED_VERSION, "producer_id": -1, "producer_epoch": -1}
    return {"producer_id": ctx.broker.producers.allocate_id(), "producer_epoch": 0}
