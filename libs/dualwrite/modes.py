"""The data mode of one migration and the live switch between modes.

shared: writes go to the legacy DB; the sync job copies them to the new DB.
dual:   every write reaches both DBs in one transaction; the sync job stands still.
single: the new DB only; the legacy tables are frozen.

Moves go one step at a time, forward or back (the rollback path), never shared <-> single."""

from __future__ import annotations

from enum import StrEnum

from libs.switch import Switch


class Mode(StrEnum):
    SHARED = "shared"
    DUAL = "dual"
    SINGLE = "single"


_ORDER = [Mode.SHARED, Mode.DUAL, Mode.SINGLE]


class ModeSwitch(Switch[Mode]):
    """A write transaction holds the mode it started in until it ends; a switch waits for
    those to finish and holds new ones back while its hooks run (draining the sync job,
    freezing tables), so no write ever straddles two modes."""

    def __init__(self, mode: Mode = Mode.SHARED) -> None:
        super().__init__(Mode(mode))

    @property
    def mode(self) -> Mode:
        return self.value

    def switch_to(self, target: Mode) -> None:
        super().switch_to(Mode(target))

    def check(self, current: Mode, target: Mode) -> None:
        if abs(_ORDER.index(target) - _ORDER.index(current)) != 1:
            raise ValueError(f"cannot move from {current} to {target}: one step at a time")
