"""Kafka wire encoding through kio, with handlers kept version-agnostic.

kio gives one frozen dataclass per API key and version. Handlers instead read and
return plain dicts: a request is flattened to a dict, and a response dict is built
into whichever versioned kio entity the client asked for, fields a version lacks
being dropped and fields it needs but the handler left out taking their defaults.
That keeps one handler per API instead of one per version.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import struct
import types
import typing
from functools import cache
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

_HEADER_PREFIX = struct.Struct(">hhi")
_MS = datetime.timedelta(milliseconds=1)


@dataclasses.dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """api_key, api_version and correlation_id sit at fixed offsets in every header
    version, so they can be read even when the rest of the frame cannot."""
    return _HEADER_PREFIX.unpack_from(frame, 0)


def decode_request(frame: bytes) -> tuple[RequestHeader, dict[str, Any]]:
    """Raises kio's UnknownAPIKey/UnknownEntity for an unmodelled key or version and
    any decode error for a malformed body: the caller maps those to error codes."""
    api_key, api_version, _ = peek_header(frame)
    schema = load_request_schema(api_key, api_version)
    header_entity, offset = entity_reader(schema.__header_schema__)(frame, 0)
    body, _ = entity_reader(schema)(frame, offset)
    header = RequestHeader(
        api_key=api_key,
        api_version=api_version,
        correlation_id=header_entity.correlation_id,
        client_id=header_entity.client_id,
    )
    return header, to_plain(body)


def encode_response(
    api_key: int, api_version: int, correlation_id: int, body: dict[str, Any]
) -> bytes:
    """The whole frame, size prefix included."""
    schema = load_response_schema(api_key, api_version)
    header_schema = schema.__header_schema__
    chunks = _Chunks()
    target = typing.cast(typing.IO[bytes], chunks)  # kio's type says IO; it only calls .write()
    entity_writer(header_schema)(target, build(header_schema, {"correlation_id": correlation_id}))
    entity_writer(schema)(target, build(schema, body))
    return chunks.frame()


class _Chunks:
    """A write target that keeps references instead of copying: a Fetch response is mostly
    record batches of up to a megabyte each, and joining once, with the size prefix, costs
    one copy where a BytesIO and its final bytes() cost two, plus the buffer's regrowth."""

    def __init__(self) -> None:
        self._parts: list[bytes] = [b""]
        self._size = 0

    def write(self, data: bytes) -> int:
        self._parts.append(data)
        self._size += len(data)
        return len(data)

    def frame(self) -> bytes:
        self._parts[0] = struct.pack(">i", self._size)
        return b"".join(self._parts)


def to_plain(value: Any) -> Any:
    """A kio entity as dicts, lists and plain ints (milliseconds, error numbers)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, datetime.timedelta):
        return value // _MS
    if isinstance(value, enum.Enum):
        return value.value
    return value


def build(entity_type: type, values: dict[str, Any]) -> Any:
    kwargs = {}
    for name, (kind, inner, kafka_type, default) in _field_specs(entity_type).items():
        if name in values:
            kwargs[name] = _convert(kind, inner, kafka_type, values[name])
        elif default is dataclasses.MISSING:
            kwargs[name] = _implicit_default(kind, kafka_type)
    return entity_type(**kwargs)


def _convert(kind: str, inner: Any, kafka_type: str | None, value: Any) -> Any:
    if value is None:
        return None
    if kind == "entity":
        return build(inner, value)
    if kind == "entities":
        return tuple(build(inner, item) for item in value)
    if kind == "array":
        return tuple(value)
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return datetime.timedelta(milliseconds=value)
    if kafka_type == "error_code":
        return ErrorCode(value)
    return value


def _implicit_default(kind: str, kafka_type: str | None) -> Any:
    if kind in ("entities", "array"):
        return ()
    return {
        "string": "",
        "bytes": b"",
        "records": None,
        "bool": False,
        "error_code": ErrorCode.none,
        "timedelta_i32": datetime.timedelta(0),
        "timedelta_i64": datetime.timedelta(0),
    }.get(kafka_type or "", 0)


@cache
def _field_specs(entity_type: type) -> dict[str, tuple[str, Any, str | None, Any]]:
    hints = typing.get_type_hints(entity_type)
    specs = {}
    for f in dataclasses.fields(entity_type):
        kind, inner = _classify(hints[f.name])
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        specs[f.name] = (kind, inner, f.metadata.get("kafka_type"), default)
    return specs


def _classify(hint: Any) -> tuple[str, Any]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return ("entities", item) if dataclasses.is_dataclass(item) else ("array", item)
    if dataclasses.is_dataclass(hint):
        return "entity", hint
    return "primitive", hint
