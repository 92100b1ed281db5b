"""Committed consumer offsets, kept the way Kafka keeps __consumer_offsets: as a log of
commits where the latest entry per (group, topic, partition) wins. Each commit is
handed to the OS before it is acknowledged; the log is compacted at start-up."""

from __future__ import annotations

import json
import os
from pathlib import Path


class OffsetStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "consumer_offsets.jsonl"
        self._offsets: dict[str, dict[tuple[str, int], tuple[int, str | None]]] = {}
        self._load()
        self._compact()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def commit(self, group: str, topic: str, partition: int, offset: int, meta: str | None) -> None:
        self._offsets.setdefault(group, {})[(topic, partition)] = (offset, meta)
        line = {"g": group, "t": topic, "p": partition, "o": offset, "m": meta}
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")

    def sync(self) -> None:
        """Called once per OffsetCommit request, after all its partitions."""
        self._file.flush()

    def fetch(self, group: str, topic: str, partition: int) -> tuple[int, str | None] | None:
        return self._offsets.get(group, {}).get((topic, partition))

    def committed(self, group: str) -> dict[tuple[str, int], tuple[int, str | None]]:
        return dict(self._offsets.get(group, {}))

    def groups(self) -> list[str]:
        return list(self._offsets)

    def flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.flush()
        self._file.close()

    def _load(self) -> None:
        if not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a crash: that commit was never acknowledged
            group = self._offsets.setdefault(entry["g"], {})
            group[(entry["t"], entry["p"])] = (entry["o"], entry["m"])

    def _compact(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            for group, offsets in self._offsets.items():
                for (topic, partition), (offset, meta) in offsets.items():
                    line = {"g": group, "t": topic, "p": partition, "o": offset, "m": meta}
                    out.write(json.dumps(line, separators=(",", ":")) + "\n")
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self.path)
