"""The dev broker's small logs (committed offsets, group metadata): JSON lines appended and
handed to the OS before the request is answered, read back at start-up with a torn last line
skipped (its request was never answered), and compacted by an atomic rewrite."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a crash: what it recorded was never acknowledged


def rewrite(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace the log by `records`, fsynced first, so a crash leaves the old or the new one."""
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        out.writelines(_line(record) for record in records)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


class AppendLog:
    def __init__(self, path: Path) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the broker

    def append(self, record: dict[str, Any]) -> None:
        self._file.write(_line(record))

    def hand_to_os(self) -> None:
        self._file.flush()

    def fsync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.fsync()
        self._file.close()


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"
