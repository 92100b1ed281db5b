"""Committed consumer offsets, kept the way Kafka keeps __consumer_offsets: as a log of
commits where the latest entry per (group, topic, partition) wins. Each commit is
handed to the OS before it is acknowledged; the log is compacted at start-up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from infra.devbroker.jsonl import AppendLog, read_records, rewrite


class OffsetStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "consumer_offsets.jsonl"
        self._offsets: dict[str, dict[tuple[str, int], tuple[int, str | None]]] = {}
        for entry in read_records(self.path):
            group = self._offsets.setdefault(entry["g"], {})
            group[(entry["t"], entry["p"])] = (entry["o"], entry["m"])
        rewrite(self.path, self._entries())
        self._log = AppendLog(self.path)

    def commit(self, group: str, topic: str, partition: int, offset: int, meta: str | None) -> None:
        self._offsets.setdefault(group, {})[(topic, partition)] = (offset, meta)
        self._log.append({"g": group, "t": topic, "p": partition, "o": offset, "m": meta})

    def sync(self) -> None:
        """Called once per OffsetCommit request, after all its partitions."""
        self._log.hand_to_os()

    def fetch(self, group: str, topic: str, partition: int) -> tuple[int, str | None] | None:
        return self._offsets.get(group, {}).get((topic, partition))

    def committed(self, group: str) -> dict[tuple[str, int], tuple[int, str | None]]:
        return dict(self._offsets.get(group, {}))

    def groups(self) -> list[str]:
        return list(self._offsets)

    def flush(self) -> None:
        self._log.fsync()

    def close(self) -> None:
        self._log.close()

    def _entries(self) -> Iterator[dict]:
        for group, offsets in self._offsets.items():
            for (topic, partition), (offset, meta) in offsets.items():
                yield {"g": group, "t": topic, "p": partition, "o": offset, "m": meta}
