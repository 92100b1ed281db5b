"""One partition's log: an append-only file of record batches and an in-memory index.

Batches are written with their broker-assigned offsets, so the file is exactly what a
fetch returns; restarting means re-reading the batch headers. Data is handed to the
OS on every append (so a killed broker loses nothing it acknowledged) and fsynced on
flush; like Kafka, the broker does not fsync per message.
"""

from __future__ import annotations

import asyncio
import bisect
import os
from pathlib import Path

from infra.devbroker.records import BatchHeader, iter_headers, record_timestamps, with_base_offset


class PartitionLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._bases: list[int] = []  # first offset of each batch, for bisect
        self._positions: list[int] = []
        self._lengths: list[int] = []
        self._max_timestamps: list[int] = []
        self.loaded_headers: list[BatchHeader] = []  # replayed into producer state, then dropped
        self.end_offset = 0  # the high watermark: one broker, so every append is committed
        self._size = 0
        self._waiters: set[asyncio.Future[None]] = set()
        self._load()
        self._file = open(path, "ab")  # noqa: SIM115 - lives as long as the partition
        self._reader = os.open(path, os.O_RDONLY)

    @property
    def start_offset(self) -> int:
        return 0  # no retention or deletion: the log starts at 0 forever

    def append(self, header: BatchHeader, raw: bytes) -> int:
        """Assigns the next offsets to the batch and returns its base offset."""
        base = self.end_offset
        stamped = with_base_offset(raw, base)
        self._file.write(stamped)
        self._index(base, self._size, len(stamped), header.max_timestamp)
        self._size += len(stamped)
        self.end_offset = base + header.last_offset_delta + 1
        return base

    def commit_appends(self) -> None:
        """Hand the appended bytes to the OS, then wake long-polling fetches."""
        self._file.flush()
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def read(self, offset: int, max_bytes: int, at_least_one: bool) -> bytes:
        """Whole batches from the one holding `offset`, up to max_bytes. Kafka (KIP-74)
        returns the first batch even when it alone exceeds the limit, so a consumer
        can never get stuck behind a batch larger than its fetch size."""
        first = bisect.bisect_right(self._bases, offset) - 1
        if first < 0 or offset >= self.end_offset:
            return b""
        start = self._positions[first]
        end = start
        for index in range(first, len(self._bases)):
            length = self._lengths[index]
            if end - start + length > max_bytes and not (at_least_one and end == start):
                break
            end += length
        return os.pread(self._reader, end - start, start) if end > start else b""

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """The earliest (offset, timestamp) at or after `timestamp` (ListOffsets)."""
        for index, max_timestamp in enumerate(self._max_timestamps):
            if max_timestamp >= timestamp:
                raw = os.pread(self._reader, self._lengths[index], self._positions[index])
                for offset, record_timestamp in record_timestamps(raw):
                    if record_timestamp >= timestamp:
                        return offset, record_timestamp
        return None

    def waiter(self) -> asyncio.Future[None]:
        """A future set by the next append: how a long-polling fetch sleeps."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.add(future)
        return future

    def discard(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.discard(waiter)

    def flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.flush()
        self._file.close()
        os.close(self._reader)

    def _index(self, base: int, position: int, length: int, max_timestamp: int) -> None:
        self._bases.append(base)
        self._positions.append(position)
        self._lengths.append(length)
        self._max_timestamps.append(max_timestamp)

    def _load(self) -> None:
        if not self.path.exists():
            self.path.touch()
            return
        data = self.path.read_bytes()
        end = 0
        for position, header in iter_headers(data):
            self._index(header.base_offset, position, header.length, header.max_timestamp)
            self.loaded_headers.append(header)
            self.end_offset = header.base_offset + header.last_offset_delta + 1
            end = position + header.length
        if end < len(data):
            # A torn write from a crash: nothing in it was acknowledged.
            os.truncate(self.path, end)
        self._size = end
