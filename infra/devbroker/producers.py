"""Idempotent producers: producer ids, epochs and per-partition sequence numbers.

A producer retrying a batch whose acknowledgement was lost sends the same
(producerId, epoch, baseSequence) again. Like Kafka, the broker remembers the last
five batches of each producer on each partition and answers such a retry with the
original offset instead of appending the records a second time. The state is not
stored separately: it is rebuilt from the batch headers in the log at start-up.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path

from infra.devbroker.records import BatchHeader

NO_PRODUCER_ID = -1
_REMEMBERED_BATCHES = 5  # max.in.flight.requests.per.connection allowed with idempotence
_INT32_MAX = 2**31 - 1


class SequenceError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass
class _ProducerEntry:
    epoch: int
    last_sequence: int
    recent: collections.deque[tuple[int, int, int]]  # (first seq, last seq, base offset)


class ProducerStates:
    def __init__(self, data_dir: Path) -> None:
        self._id_file = data_dir / "producer_ids.json"
        self._next_id = 0
        if self._id_file.exists():
            self._next_id = json.loads(self._id_file.read_text())["next_producer_id"]
        self._entries: dict[tuple[str, int, int], _ProducerEntry] = {}

    def allocate_id(self) -> int:
        producer_id = self._next_id
        self._next_id += 1
        temporary = self._id_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"next_producer_id": self._next_id}))
        temporary.replace(self._id_file)
        return producer_id

    def check(self, topic: str, partition: int, header: BatchHeader) -> int | None:
        """The base offset already assigned if this batch is a retried duplicate, None
        if it is the next one to append; raises SequenceError when it is neither."""
        if header.producer_id == NO_PRODUCER_ID:
            return None
        entry = self._entries.get((topic, partition, header.producer_id))
        if entry is None:
            if header.base_sequence != 0:
                raise SequenceError(45, "first batch of an unknown producer must have sequence 0")
            return None
        if header.producer_epoch < entry.epoch:
            raise SequenceError(47, "producer epoch is older than the current one (fenced)")
        if header.producer_epoch > entry.epoch:
            if header.base_sequence != 0:
                raise SequenceError(45, "first batch of a new producer epoch must have sequence 0")
            return None
        for first, last, base_offset in entry.recent:
            if (first, last) == (header.base_sequence, header.last_sequence):
                return base_offset
        expected = 0 if entry.last_sequence == _INT32_MAX else entry.last_sequence + 1
        if header.base_sequence != expected:
            raise SequenceError(
                45, f"expected sequence {expected}, received {header.base_sequence}"
            )
        return None

    def record(self, topic: str, partition: int, header: BatchHeader, base_offset: int) -> None:
        if header.producer_id == NO_PRODUCER_ID:
            return
        self._next_id = max(self._next_id, header.producer_id + 1)
        key = (topic, partition, header.producer_id)
        entry = self._entries.get(key)
        if entry is None or header.producer_epoch > entry.epoch:
            entry = _ProducerEntry(
                header.producer_epoch, -1, collections.deque(maxlen=_REMEMBERED_BATCHES)
            )
            self._entries[key] = entry
        entry.last_sequence = header.last_sequence
        entry.recent.append((header.base_sequence, header.last_sequence, base_offset))
