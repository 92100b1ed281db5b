"""Group metadata, kept the way Kafka keeps its GroupMetadata records in __consumer_offsets:
a log with one entry each time a rebalance completes (generation, protocol, leader, every
member and its assignment) or the group empties; the latest entry per group wins and the log
is compacted at start-up. A restarted broker therefore still knows its groups' members, and
a member that keeps heartbeating carries on with its partitions instead of rebalancing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.devbroker.jsonl import AppendLog, read_records, rewrite


class GroupStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "consumer_groups.jsonl"
        # A torn last line is skipped: that rebalance never completed.
        self.loaded = {record["group_id"]: record for record in read_records(self.path)}
        rewrite(self.path, self.loaded.values())
        self._log = AppendLog(self.path)

    def store(self, record: dict[str, Any]) -> None:
        """Handed to the OS before the rebalance's responses go out, like offset commits."""
        self._log.append(record)
        self._log.hand_to_os()

    def close(self) -> None:
        self._log.close()
