"""Topics and their partition logs, laid out as data_dir/topics/<name>/<partition>.log."""

from __future__ import annotations

import json
import re
from pathlib import Path

from infra.devbroker.log import PartitionLog

# Kafka's rule: [a-zA-Z0-9._-], at most 249 characters, not "." or "..".
_LEGAL_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


class TopicError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_topic_name(name: str) -> None:
    if not _LEGAL_NAME.match(name) or name in (".", ".."):
        raise TopicError(17, f"topic name {name!r} is illegal")  # INVALID_TOPIC_EXCEPTION


class TopicStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "topics"
        self.root.mkdir(parents=True, exist_ok=True)
        self.partitions: dict[str, list[PartitionLog]] = {}
        for meta in sorted(self.root.glob("*/topic.json")):
            self._open(meta.parent.name, json.loads(meta.read_text())["partitions"])

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        logs = self.partitions.get(topic)
        if logs is None or not 0 <= partition < len(logs):
            return None
        return logs[partition]

    def create(self, name: str, partitions: int) -> None:
        check_topic_name(name)
        if name in self.partitions:
            raise TopicError(36, f"topic {name!r} already exists")  # TOPIC_ALREADY_EXISTS
        if partitions < 1:
            raise TopicError(37, "number of partitions must be at least 1")  # INVALID_PARTITIONS
        directory = self.root / name
        directory.mkdir()
        meta = directory / "topic.json"
        meta.with_suffix(".tmp").write_text(json.dumps({"partitions": partitions}))
        meta.with_suffix(".tmp").replace(meta)
        self._open(name, partitions)

    def flush(self) -> None:
        for logs in self.partitions.values():
            for log in logs:
                log.flush()

    def close(self) -> None:
        for logs in self.partitions.values():
            for log in logs:
                log.close()

    def _open(self, name: str, partitions: int) -> None:
        directory = self.root / name
        self.partitions[name] = [
            PartitionLog(directory / f"{index}.log") for index in range(partitions)
        ]
