"""Produce: validate each partition's batches, check idempotent sequences, append.

Offsets are assigned here, in the order requests arrive, and only per partition:
that is the whole of Kafka's ordering guarantee, and why events are keyed.
"""

from __future__ import annotations

from typing import Any

from infra.devbroker.context import RequestContext
from infra.devbroker.producers import SequenceError
from infra.devbroker.records import InvalidBatch, split_batches

NONE = 0
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_REQUIRED_ACKS = 21
UNSUPPORTED_VERSION = 35


async def produce(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any] | None:
    acks = request["acks"]
    responses = []
    for topic in request["topic_data"]:
        partitions = []
        for data in topic["partition_data"]:
            if acks not in (0, 1, -1):
                code, base = INVALID_REQUIRED_ACKS, -1
            elif request["transactional_id"] is not None:
                code, base = UNSUPPORTED_VERSION, -1  # transactions are not supported
            else:
                code, base = _append(ctx, topic["name"], data["index"], data["records"] or b"")
            partitions.append(
                {
                    "index": data["index"],
                    "error_code": code,
                    "base_offset": base,
                    "log_start_offset": 0 if code == NONE else -1,
                }
            )
        responses.append({"name": topic["name"], "partition_responses": partitions})
    if acks == 0:
        return None  # the client expects no response at all
    # acks=1 and acks=all mean the same on a single node: the leader is the only replica.
    return {"responses": responses}


def _append(ctx: RequestContext, topic: str, partition: int, records: bytes) -> tuple[int, int]:
    broker = ctx.broker
    log = broker.topics.get(topic, partition)
    if log is None:
        return UNKNOWN_TOPIC_OR_PARTITION, -1
    try:
        batches = split_batches(records)
    except InvalidBatch:
        return CORRUPT_MESSAGE, -1
    if any(header.length > broker.config.max_message_bytes for header, _ in batches):
        return MESSAGE_TOO_LARGE, -1
    if any(header.is_transactional or header.is_control for header, _ in batches):
        return UNSUPPORTED_VERSION, -1
    first_base = -1
    for header, raw in batches:
        try:
            duplicate_of = broker.producers.check(topic, partition, header)
        except SequenceError as exc:
            log.commit_appends()
            return exc.code, -1
        if duplicate_of is not None:
            # A retry of a batch already appended: acknowledge it again, append nothing.
            base = duplicate_of
        else:
            base = log.append(header, raw)
            broker.producers.record(topic, partition, header, base)
        first_base = base if first_base < 0 else first_base
    log.commit_appends()
    return NONE, first_base
