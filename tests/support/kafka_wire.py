"""A raw Kafka-protocol client for tests that need exact frames: retried batches,
malformed requests, unknown API keys. Encodes with kio, like the broker."""

from __future__ import annotations

import asyncio
import io
import struct
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

from infra.devbroker.codec import build, to_plain


class WireClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._correlation = 0

    @classmethod
    async def connect(cls, port: int) -> WireClient:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, api_key: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
        correlation = await self.send(api_key, version, body)
        frame = await self.read_frame()
        assert struct.unpack_from(">i", frame)[0] == correlation
        return decode_response(api_key, version, frame)

    async def send(self, api_key: int, version: int, body: dict[str, Any]) -> int:
        schema = load_request_schema(api_key, version)
        self._correlation += 1
        header = {
            "request_api_key": api_key,
            "request_api_version": version,
            "correlation_id": self._correlation,
            "client_id": "wire-test",
        }
        buffer = io.BytesIO()
        entity_writer(schema.__header_schema__)(buffer, build(schema.__header_schema__, header))
        entity_writer(schema)(buffer, build(schema, body))
        await self.send_raw(buffer.getvalue())
        return self._correlation

    async def send_raw(self, payload: bytes, size: int | None = None) -> None:
        self.writer.write(struct.pack(">i", len(payload) if size is None else size) + payload)
        await self.writer.drain()

    async def read_frame(self) -> bytes:
        size = struct.unpack(">i", await asyncio.wait_for(self.reader.readexactly(4), 5))[0]
        return await asyncio.wait_for(self.reader.readexactly(size), 5)

    async def close(self) -> None:
        self.writer.close()


def decode_response(api_key: int, version: int, frame: bytes) -> dict[str, Any]:
    schema = load_response_schema(api_key, version)
    _, offset = entity_reader(schema.__header_schema__)(frame, 0)
    response, _ = entity_reader(schema)(frame, offset)
    return to_plain(response)


def record_batch(
    values: list[bytes], producer_id: int = -1, epoch: int = -1, sequence: int = -1
) -> bytes:
    builder = DefaultRecordBatchBuilder(2, 0, 0, producer_id, epoch, sequence, 1 << 20)
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=None, key=None, value=value, headers=[])
    return bytes(builder.build())


def produce_body(topic: str, partition: int, records: bytes, acks: int = -1) -> dict[str, Any]:
    return {
        "transactional_id": None,
        "acks": acks,
        "timeout": 5000,
        "topic_data": [
            {"name": topic, "partition_data": [{"index": partition, "records": records}]}
        ],
    }
