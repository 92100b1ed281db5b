"""The live switch of the data mode (shared -> dual -> single, and back one step at a time).
The toolkit's `ModeSwitch` runs the hooks: draining the sync job on shared -> dual, the
reconcile guard, sequence alignment and the legacy freeze on dual -> single."""

from __future__ import annotations

from typing import Any

from libs.dualwrite import Mode
from services.member.adapters.data import MemberData


def current(data: MemberData) -> dict[str, Any]:
    return {"migration": data.writer.spec.name, "mode": data.mode.value}


def change(data: MemberData, target: Mode) -> dict[str, Any]:
    """Raises what the toolkit raises when a move is refused; nothing changes then."""
    previous = data.mode
    if target is not previous:
        if target is Mode.DUAL:
            data.writer.check()  # two-phase commit must be possible before anything moves
        data.switch.switch_to(target)
    return current(data) | {"previous": previous.value, "changed": target is not previous}
