"""The APIs and versions the broker advertises, and request dispatch.

The version ranges were chosen against what aiokafka 0.14 and librdkafka 2.x send:
both pick the highest version the broker advertises. kio models every one of them.
CreateTopics starts at v2 because v0-v1 are gone from Kafka's current schemas.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from kio.index import KioIndexError, load_response_schema

from infra.devbroker import codec
from infra.devbroker.context import RequestContext
from infra.devbroker.handlers import cluster, fetch, groups, offsets, produce

log = logging.getLogger(__name__)

API_VERSIONS = 18
UNKNOWN_SERVER_ERROR = -1
UNSUPPORTED_VERSION = 35
INVALID_REQUEST = 42

Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[dict[str, Any] | None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Api:
    name: str
    min_version: int
    max_version: int
    handler: Handler


async def _api_versions(ctx: RequestContext, request: dict[str, Any]) -> dict[str, Any]:
    return {"error_code": 0, "api_keys": advertised()}


APIS: dict[int, Api] = {
    0: Api("Produce", 3, 7, produce.produce),
    1: Api("Fetch", 4, 11, fetch.fetch),
    2: Api("ListOffsets", 1, 3, fetch.list_offsets),
    3: Api("Metadata", 1, 5, cluster.metadata),
    8: Api("OffsetCommit", 2, 3, offsets.offset_commit),
    9: Api("OffsetFetch", 1, 3, offsets.offset_fetch),
    10: Api("FindCoordinator", 0, 1, cluster.find_coordinator),
    11: Api("JoinGroup", 0, 5, groups.join_group),
    12: Api("Heartbeat", 0, 3, groups.heartbeat),
    13: Api("LeaveGroup", 0, 1, groups.leave_group),
    14: Api("SyncGroup", 0, 3, groups.sync_group),
    15: Api("DescribeGroups", 0, 4, groups.describe_groups),
    16: Api("ListGroups", 0, 2, groups.list_groups),
    18: Api("ApiVersions", 0, 3, _api_versions),
    19: Api("CreateTopics", 2, 3, cluster.create_topics),
    22: Api("InitProducerId", 0, 0, cluster.init_producer_id),
}


def advertised() -> list[dict[str, int]]:
    return [
        {"api_key": key, "min_version": api.min_version, "max_version": api.max_version}
        for key, api in sorted(APIS.items())
    ]


async def dispatch(
    frame: bytes, make_context: Callable[[int, str], RequestContext]
) -> bytes | None:
    """Every frame gets an answer carrying its correlation id (acks=0 produce aside):
    an unsupported or malformed request must never cost the client its connection
    or leave it waiting."""
    api_key, version, correlation_id = codec.peek_header(frame)
    api = APIS.get(api_key)
    if api is None or not api.min_version <= version <= api.max_version:
        if api_key == API_VERSIONS:
            # KIP-511: a v0 body listing the versions of ApiVersions this broker speaks,
            # so the client retries with one of them. Like Kafka, only ApiVersions itself:
            # the full list comes with the retried request.
            own = [entry for entry in advertised() if entry["api_key"] == API_VERSIONS]
            return codec.encode_response(
                API_VERSIONS,
                0,
                correlation_id,
                {"error_code": UNSUPPORTED_VERSION, "api_keys": own},
            )
        return error_response(api_key, version, correlation_id, UNSUPPORTED_VERSION)
    try:
        header, body = codec.decode_request(frame)
    except Exception:
        log.info("undecodable %s v%d request", api.name, version, exc_info=True)
        return error_response(api_key, version, correlation_id, INVALID_REQUEST)
    try:
        result = await api.handler(make_context(version, header.client_id or ""), body)
    except Exception:
        log.exception("%s v%d failed", api.name, version)
        return error_response(api_key, version, correlation_id, UNKNOWN_SERVER_ERROR)
    if result is None:
        return None
    try:
        return codec.encode_response(api_key, version, correlation_id, result)
    except Exception:
        log.exception("%s v%d response could not be encoded", api.name, version)
        return error_response(api_key, version, correlation_id, UNKNOWN_SERVER_ERROR)


def error_response(api_key: int, version: int, correlation_id: int, code: int) -> bytes:
    """The API's own response shape with its top-level error code set when kio models
    that API and version; otherwise a bare header and int16 error code. A response without
    a top-level error code (Produce, Metadata, Fetch before v7) would otherwise carry none."""
    try:
        schema = load_response_schema(api_key, version)
        if "error_code" in {field.name for field in dataclasses.fields(schema)}:
            return codec.encode_response(api_key, version, correlation_id, {"error_code": code})
    except (KioIndexError, ValueError, TypeError):
        pass
    return struct.pack(">iih", 6, correlation_id, code)
