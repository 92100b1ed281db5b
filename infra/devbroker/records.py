"""Record batch v2 (magic 2) as the broker sees it: a header it reads and one field
it rewrites, and an opaque, possibly compressed, payload it never decodes.

Layout of the fixed 61-byte header:
  baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
  attributes i16 | lastOffsetDelta i32 | firstTimestamp i64 | maxTimestamp i64 |
  producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32
The CRC covers attributes onwards, so assigning offsets (baseOffset) and stamping
the leader epoch never invalidates it: batches are stored and served as sent.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator

from aiokafka.record.default_records import DefaultRecordBatch

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
LOG_OVERHEAD = 12  # baseOffset + batchLength precede the length-counted part
_TRANSACTIONAL = 0x10
_CONTROL = 0x20


class InvalidBatch(ValueError):
    """The produce request's records cannot be appended as they are."""


@dataclasses.dataclass(frozen=True, slots=True)
class BatchHeader:
    base_offset: int
    length: int  # bytes on the wire, LOG_OVERHEAD included
    magic: int
    attributes: int
    last_offset_delta: int
    first_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL)

    @property
    def last_sequence(self) -> int:
        return self.base_sequence + self.last_offset_delta


def read_header(data: bytes | memoryview, position: int = 0) -> BatchHeader:
    (
        base,
        batch_length,
        _,
        magic,
        _,
        attributes,
        delta,
        first_ts,
        max_ts,
        pid,
        epoch,
        seq,
        count,
    ) = HEADER.unpack_from(data, position)
    return BatchHeader(
        base_offset=base,
        length=batch_length + LOG_OVERHEAD,
        magic=magic,
        attributes=attributes,
        last_offset_delta=delta,
        first_timestamp=first_ts,
        max_timestamp=max_ts,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        record_count=count,
    )


def split_batches(records: bytes) -> list[tuple[BatchHeader, bytes]]:
    """Every batch of a produce request, checked the way Kafka's log validator does
    before anything is appended: one bad batch rejects the whole partition write."""
    batches = []
    position = 0
    while position < len(records):
        if len(records) - position < HEADER_SIZE:
            raise InvalidBatch("truncated record batch header")
        header = read_header(records, position)
        if header.magic != 2:
            raise InvalidBatch(f"record batch magic {header.magic} is not supported (only v2)")
        end = position + header.length
        if header.length < HEADER_SIZE or end > len(records):
            raise InvalidBatch("record batch length does not match the data sent")
        raw = records[position:end]
        if not DefaultRecordBatch(raw).validate_crc():
            raise InvalidBatch("record batch CRC mismatch")
        if header.record_count != header.last_offset_delta + 1:
            raise InvalidBatch("record count does not match lastOffsetDelta")
        batches.append((header, raw))
        position = end
    if not batches:
        raise InvalidBatch("no record batch in the request")
    return batches


def with_base_offset(raw: bytes, base_offset: int, leader_epoch: int = 0) -> bytes:
    stamped = bytearray(raw)
    struct.pack_into(">q", stamped, 0, base_offset)
    struct.pack_into(">i", stamped, 8 + 4, leader_epoch)
    return bytes(stamped)


def iter_headers(data: bytes, start: int = 0) -> Iterator[tuple[int, BatchHeader]]:
    """Positions and headers of the complete batches in a log file's bytes; a torn
    tail (a crash mid-append) ends the iteration so the caller can truncate it."""
    position = start
    while len(data) - position >= HEADER_SIZE:
        header = read_header(data, position)
        if header.length < HEADER_SIZE or position + header.length > len(data):
            return
        yield position, header
        position += header.length


def record_timestamps(raw: bytes) -> Iterator[tuple[int, int]]:
    """(offset, timestamp) of each record; decompresses, so only ListOffsets by time
    pays for it."""
    for record in DefaultRecordBatch(raw):
        yield record.offset, record.timestamp
