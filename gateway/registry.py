"""The live route table: read by every proxied request, replaced whole by the admin API and
the ramp. Replacing is one assignment after full validation, so a request sees either the old
table or the new one, and a refused table changes nothing."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from libs.routing import InvalidRouteTable, Route, RouteTable, parse_route_table

log = logging.getLogger("shop.gateway.routes")
MAX_CHANGES = 200


class VersionConflict(Exception):
    def __init__(self, expected: int, current: int) -> None:
        super().__init__(f"the table is at version {current}, not {expected}")
        self.current = current


class RouteRegistry:
    def __init__(
        self,
        table: RouteTable,
        backends: Iterable[str],
        *,
        max_read_timeout: float,
        shadow_percent: float = 100.0,
        version: int = 1,
        changes: Iterable[dict[str, Any]] = (),
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.table = table
        self.backends = tuple(backends)
        self.max_read_timeout = max_read_timeout
        self.shadow_percent = shadow_percent
        self.version = version
        self.changes: deque[dict[str, Any]] = deque(changes, maxlen=MAX_CHANGES)
        self.on_change = on_change

    def parse(self, data: Any) -> RouteTable:
        return parse_route_table(
            data,
            self.backends,
            max_read_timeout=self.max_read_timeout,
            default_shadow_percent=self.shadow_percent,
        )

    def replace(self, data: Any, *, actor: str, reason: str = "") -> RouteTable:
        """Validate `data` and make it the live table; InvalidRouteTable or VersionConflict
        leave everything as it was."""
        proposed = self.parse(data)
        expected = data.get("version") if isinstance(data, dict) else None
        if expected is not None and expected != self.version:
            raise VersionConflict(expected, self.version)
        return self._apply(self.table.evolve(proposed), actor, reason)

    def set_weights(
        self, route_name: str, weights: Sequence[tuple[str, int]], *, actor: str, reason: str
    ) -> Route:
        route = self.table.get(route_name)
        if route is None:
            raise InvalidRouteTable([{"field": "route", "message": f"no route '{route_name}'"}])
        changed = route.with_weights(weights)
        self._apply(self.table.with_route(changed), actor, reason)
        return changed

    def _apply(self, table: RouteTable, actor: str, reason: str) -> RouteTable:
        before = {r.name: dict(r.weights) for r in self.table.routes}
        after = {r.name: dict(r.weights) for r in table.routes}
        self.table = table
        self.version += 1
        change = {
            "version": self.version,
            "at": time.time(),
            "actor": actor,
            "reason": reason,
            "weights": {n: w for n, w in after.items() if before.get(n) != w},
            "removed": sorted(set(before) - set(after)),
        }
        self.changes.append(change)
        log.info("route table changed", extra={"change": change})
        self.on_change()
        return table

    def dump(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "table": self.table.to_dict(),
            "allocations": self.table.allocations(),
            "changes": list(self.changes),
        }

    @classmethod
    def restore(
        cls,
        saved: dict[str, Any] | None,
        default: dict[str, Any],
        backends: Iterable[str],
        *,
        max_read_timeout: float,
        shadow_percent: float = 100.0,
    ) -> RouteRegistry:
        backends = tuple(backends)
        fresh = cls(
            parse_route_table(default, backends),
            backends,
            max_read_timeout=max_read_timeout,
            shadow_percent=shadow_percent,
        )
        if not saved:
            return fresh
        try:
            table = fresh.parse(saved["table"]).with_allocations(saved.get("allocations", {}))
        except (InvalidRouteTable, KeyError, TypeError) as exc:
            log.error("saved route table refused (%s); starting from the defaults", exc)
            return fresh
        return cls(
            table,
            backends,
            max_read_timeout=max_read_timeout,
            shadow_percent=shadow_percent,
            version=int(saved.get("version", 1)),
            changes=saved.get("changes", []),
        )
