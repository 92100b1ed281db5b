"""Fetch (with long-poll) and ListOffsets."""

from __future__ import annotations

import asyncio
from typing import Any

from infra.devbroker.context import RequestContext
from infra.devbroker.log import PartitionLog

NONE = 0
OFFSET_OUT_OF_RANGE = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
LATEST = -1
EARLIEST = -2


async def fetch(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    """Long-poll: with less than min_bytes available the broker holds the request until
    data arrives or max_wait passes, so idle consumers cost nothing and new records
    reach them as soon as they are appended."""
    session_error = _check_session(request)
    if session_error:
        return {"error_code": session_error, "session_id": 0, "responses": []}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request["max_wait"] / 1000
    while True:
        responses, total, failed = _read(ctx, request)
        remaining = deadline - loop.time()
        if total >= request["min_bytes"] or failed or remaining <= 0 or ctx.broker.stopping:
            # session_id 0: the broker declines incremental fetch sessions (KIP-227), so
            # clients keep sending full fetch requests, which is always allowed.
            return {"session_id": 0, "responses": responses}
        await _wait_for_appends(ctx, request, remaining)


def _check_session(request: dict[str, Any]) -> int:
    if request.get("session_id", 0) != 0:
        return FETCH_SESSION_ID_NOT_FOUND
    if request.get("session_epoch", -1) > 0:
        return INVALID_FETCH_SESSION_EPOCH
    return NONE


def _read(ctx: RequestContext, request: dict[str, Any]) -> tuple[list[dict], int, bool]:
    budget = request.get("max_bytes", 0x7FFFFFFF)
    total, failed, responses = 0, False, []
    for topic in request["topics"]:
        partitions = []
        for wanted in topic["partitions"]:
            log = ctx.broker.topics.get(topic["topic"], wanted["partition"])
            limit = min(wanted["partition_max_bytes"], budget - total)
            part = _partition_response(log, wanted, limit, first=total == 0)
            failed = failed or part["error_code"] != NONE
            total += len(part["records"] or b"")
            partitions.append(part)
        responses.append({"topic": topic["topic"], "partitions": partitions})
    return responses, total, failed


def _partition_response(
    log: PartitionLog | None, wanted: dict[str, Any], max_bytes: int, first: bool
) -> dict[str, Any]:
    response = {
        "partition_index": wanted["partition"],
        "error_code": NONE,
        "high_watermark": -1,
        "last_stable_offset": -1,
        "log_start_offset": -1,
        "aborted_transactions": None,
        "records": b"",
    }
    if log is None:
        response["error_code"] = UNKNOWN_TOPIC_OR_PARTITION
        return response
    offset = wanted["fetch_offset"]
    response.update(high_watermark=log.end_offset, last_stable_offset=log.end_offset)
    response["log_start_offset"] = log.start_offset
    if not log.start_offset <= offset <= log.end_offset:
        response["error_code"] = OFFSET_OUT_OF_RANGE
        return response
    # KIP-74: the first partition with data returns at least one whole batch.
    response["records"] = log.read(offset, max(max_bytes, 0), at_least_one=first)
    return response


async def _wait_for_appends(
    ctx: RequestContext, request: dict[str, Any], wait_seconds: float
) -> None:
    logs = [
        log
        for topic in request["topics"]
        for wanted in topic["partitions"]
        if (log := ctx.broker.topics.get(topic["topic"], wanted["partition"])) is not None
    ]
    waiters = {log: log.waiter() for log in logs}
    waiters_all = [*waiters.values(), ctx.broker.stopped_waiter()]
    try:
        await asyncio.wait(waiters_all, timeout=wait_seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for log, waiter in waiters.items():
            log.discard(waiter)
            waiter.cancel()


async def list_offsets(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    topics = []
    for topic in request["topics"]:
        partitions = []
        for wanted in topic["partitions"]:
            log = ctx.broker.topics.get(topic["name"], wanted["partition_index"])
            code, timestamp, offset = _lookup(log, wanted["timestamp"])
            partitions.append(
                {
                    "partition_index": wanted["partition_index"],
                    "error_code": code,
                    "timestamp": timestamp,
                    "offset": offset,
                }
            )
        topics.append({"name": topic["name"], "partitions": partitions})
    return {"topics": topics}


def _lookup(log: PartitionLog | None, timestamp: int) -> tuple[int, int, int]:
    if log is None:
        return UNKNOWN_TOPIC_OR_PARTITION, -1, -1
    if timestamp == LATEST:
        return NONE, -1, log.end_offset
    if timestamp == EARLIEST:
        return NONE, -1, log.start_offset
    found = log.offset_for_timestamp(timestamp)
    return (NONE, found[1], found[0]) if found else (NONE, -1, -1)
