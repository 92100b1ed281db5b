"""The data mode of one migration and the live switch between modes.

shared: writes go to the legacy DB; the sync job copies them to the new DB.
dual:   every write reaches both DBs in one transaction; the sync job stands still.
single: the new DB only; the legacy tables are frozen.

Moves go one step at a time, forward or back (the rollback path), never shared <-> single."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum


class Mode(StrEnum):
    SHARED = "shared"
    DUAL = "dual"
    SINGLE = "single"


_ORDER = [Mode.SHARED, Mode.DUAL, Mode.SINGLE]

Hook = Callable[[Mode, Mode], None]


class ModeSwitch:
    """Thread-safe: a write transaction holds the mode it started in until it ends, and a
    switch waits for those to finish and holds new ones back while its hooks run (draining
    the sync job, freezing tables), so no write ever straddles two modes."""

    def __init__(self, mode: Mode = Mode.SHARED) -> None:
        self._mode = Mode(mode)
        self._hooks: list[Hook] = []
        self._cond = threading.Condition()
        self._active = 0
        self._switching = False

    @property
    def mode(self) -> Mode:
        return self._mode

    def add_hook(self, hook: Hook) -> None:
        """Run `hook(old, new)` during every switch, with writes held; raising cancels it."""
        self._hooks.append(hook)

    @contextmanager
    def holding(self) -> Iterator[Mode]:
        with self._cond:
            # A waiting switch goes first, so a steady stream of writes cannot starve it.
            self._cond.wait_for(lambda: not self._switching)
            self._active += 1
            mode = self._mode
        try:
            yield mode
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def switch_to(self, target: Mode) -> None:
        target = Mode(target)
        with self._cond:
            self._cond.wait_for(lambda: not self._switching)
            self._switching = True
            self._cond.wait_for(lambda: self._active == 0)
        try:
            self._move(target)
        finally:
            with self._cond:
                self._switching = False
                self._cond.notify_all()

    def _move(self, target: Mode) -> None:
        if abs(_ORDER.index(target) - _ORDER.index(self._mode)) != 1:
            raise ValueError(f"cannot move from {self._mode} to {target}: one step at a time")
        for hook in self._hooks:
            hook(self._mode, target)
        self._mode = target
