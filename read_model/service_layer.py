"""Applying events to views, and reading them: the read model's two jobs.

`Projector.apply` is the consumer's handler. For each view an event touches it reads the
view, applies the rule of read_model/views.py, and writes it back with a version-guarded
upsert; a writer that lost the race re-reads and applies again. The sequence the view has
applied is in the same document as the change, so the processed position and the view change
commit together, in whatever store holds them (the consumer's inbox is not used: with a
MongoDB store it would be in another database than the effect).

`Projector.read` is cache-aside in front of the store (read_model/cache.py)."""

from __future__ import annotations

import json
import time

import sqlalchemy as sa
from redis.exceptions import RedisError

from libs.events.envelope import Event
from read_model import views
from read_model.cache import ViewCache
from read_model.metrics import ReadModelMetrics
from read_model.store import View, ViewStore

# Writers that keep losing to each other this often are a bug, not contention.
MAX_ATTEMPTS = 50


class StoreUnavailable(sa.exc.OperationalError):
    """The view store cannot be reached (MongoDB away, say). An OperationalError, so the
    consumer runner treats it like its database being away: it rewinds and retries the event
    later instead of parking it."""

    def __init__(self, cause: Exception) -> None:
        super().__init__("read model store", None, cause)


class WriteConflicts(RuntimeError):
    """A view kept changing under its writer MAX_ATTEMPTS times."""


class Projector:
    def __init__(
        self,
        store: ViewStore,
        generation: str,
        metrics: ReadModelMetrics,
        cache: ViewCache | None = None,
        *,
        live: bool = True,
    ) -> None:
        self.store, self.generation, self.metrics, self.cache = store, generation, metrics, cache
        # A rebuild's projector replays the past: its events' age says nothing of how fresh
        # the served views are, so it measures freshness only once it is swapped in.
        self.live = live

    async def apply(self, event: Event) -> bool:
        """True if any view changed (the consumer counts the event processed), False if it
        changed nothing (a duplicate). MalformedEvent: the consumer parks it."""
        changed = False
        for kind, key in views.targets(event):
            outcome = await self._apply_one(kind, key, event)
            self.metrics.events.labels(kind, outcome).inc()
            changed |= outcome != "unchanged"
        if changed and self.live:
            self.metrics.freshness.observe(max(0.0, time.time() - event.occurred_at.timestamp()))
        return changed

    async def _apply_one(self, kind: str, key: str, event: Event) -> str:
        for _ in range(MAX_ATTEMPTS):
            view = await self.store.get(kind, key) or View(kind, key)
            expected, held_before = view.version, len(view.held)
            if not views.apply(view, event):
                return "unchanged"
            view.version, view.updated_at = expected + 1, time.time()
            if await self.store.put(view, expected):
                if self.cache is not None:
                    await self.cache.invalidate(self._entry(kind, key), view.version)
                return "held" if len(view.held) > held_before else "applied"
            self.metrics.conflicts.inc()
        raise WriteConflicts(f"{kind} {key}: {MAX_ATTEMPTS} writes lost to other writers")

    async def read(self, kind: str, key: str) -> View | None:
        """The view if it can be served (read_model/views.py `servable`), else None."""
        if self.cache is None:
            self.metrics.cache.labels("off").inc()
            return _servable(await self.store.get(kind, key))
        entry = self._entry(kind, key)
        try:
            cached = await self.cache.get(entry)
        except RedisError:
            self.metrics.cache.labels("error").inc()
            return _servable(await self.store.get(kind, key))
        if cached is not None:
            self.metrics.cache.labels("hit").inc()
            body = json.loads(cached[1])
            return View(kind, key, cached[0], body["data"], updated_at=body["updated_at"])
        self.metrics.cache.labels("miss").inc()
        view = _servable(await self.store.get(kind, key))
        if view is not None:
            try:
                body = json.dumps({"data": view.data, "updated_at": view.updated_at})
                await self.cache.fill(entry, view.version, body)
            except RedisError:
                pass  # served from the store; the next read tries the cache again
        return view

    def _entry(self, kind: str, key: str) -> str:
        assert self.cache is not None
        return self.cache.key(self.generation, kind, key)


def _servable(view: View | None) -> View | None:
    return view if view is not None and views.servable(view) else None
