"""What must hold outside an extracted service before its data may move to a mode.

Dual write is safe only once the monolith no longer writes the migrated tables itself: a
member write the monolith commits to the legacy DB alone, while the service writes both DBs in
one transaction, is a row the two DBs disagree on (the service's next write of it is a
DivergedWrite). Single write is safe only once the monolith serves none of it. The stage engine
flips the monolith's features before it moves the data mode (infra/stages.py); the admin API
checks the same order, so a hand-made PUT /admin/data-mode cannot skip it.

The monolith's switches are read where the monolith keeps them for its own restarts, the legacy
DB, which every extracted service reaches through the migration toolkit in every mode: the
check needs no monolith process up, and reads what a restarted monolith would serve. It holds
when the mode changes; moving a feature back afterwards is the stage engine's (or the
operator's) to order: the engine moves the data mode back first."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from libs.dualwrite import Mode

FeatureReader = Callable[[sa.Engine], Mapping[str, str]]


@dataclass(frozen=True)
class ModePreconditions:
    # mode -> monolith feature -> the values it may have when the data moves to that mode
    required: Mapping[str, Mapping[str, frozenset[str]]]
    read: FeatureReader  # the monolith's current feature values, from the legacy DB

    def unmet(self, target: Mode, legacy: sa.Engine) -> list[dict[str, Any]]:
        """One entry per feature that does not allow `target` yet (empty: the move may go)."""
        needs = self.required.get(target.value, {})
        if not needs:
            return []
        values = self.read(legacy)
        return [
            {"feature": name, "value": values.get(name), "required": sorted(allowed)}
            for name, allowed in needs.items()
            if values.get(name) not in allowed
        ]


def describe(target: Mode, unmet: list[dict[str, Any]]) -> str:
    missing = "; ".join(
        f"{u['feature']} is {u['value']!r}, needs {' or '.join(map(repr, u['required']))}"
        for u in unmet
    )
    return (
        f"cannot move to {target.value} write while the monolith's features do not allow it: "
        f"{missing}. Set them first (PUT /admin/features on the monolith), as `shop stage "
        "apply` does."
    )
