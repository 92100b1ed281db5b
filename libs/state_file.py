"""A process's decisions on disk, so a restart keeps them: the gateway's route table, members'
placement, ramps and change log; an extracted service's data mode. Written whole to a
temporary file and renamed over the old one, so a crash mid-write leaves either the old state
or the new, never half of each."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("shop.state")


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # Refusing to start would take the whole shop down for one file; start from the
            # defaults and keep the unreadable file for the operator to inspect.
            keep = self.path.with_suffix(".unreadable")
            log.error("state file %s unreadable (%s); kept as %s", self.path, exc, keep)
            self.path.replace(keep)
            return None
        return data if isinstance(data, dict) else None

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
