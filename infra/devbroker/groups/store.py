"""Group metadata, kept the way Kafka keeps its GroupMetadata records in __consumer_offsets:
a log with one entry each time a rebalance completes (generation, protocol, leader, every
member and its assignment) or the group empties; the latest entry per group wins and the log
is compacted at start-up. A restarted broker therefore still knows its groups' members, and
a member that keeps heartbeating carries on with its partitions instead of rebalancing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class GroupStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "consumer_groups.jsonl"
        self.loaded: dict[str, dict[str, Any]] = {}
        self._load()
        self._compact()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def store(self, record: dict[str, Any]) -> None:
        """Handed to the OS before the rebalance's responses go out, like offset commits."""
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def _load(self) -> None:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a crash: that rebalance never completed
            self.loaded[record["group_id"]] = record

    def _compact(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            for record in self.loaded.values():
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self.path)
