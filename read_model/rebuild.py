"""Rebuild from the log: a fresh generation of views, filled from the topics' earliest
offsets by a consumer group of its own, swapped in once it has caught up, while the served
generation keeps answering until that moment.

"Caught up" is measured against the end offsets taken when the rebuild starts: everything
that was in the log then is in the new views. Events published meanwhile are applied by the
new group too, before or just after the swap; from the swap on, the new group is the live one
and the old generation's group stops and its store is dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from infra.settings import ReadModelSettings
from read_model import views
from read_model.cache import ViewCache
from read_model.feed import Feed, end_offsets, open_feed, wait_committed
from read_model.generations import Generations, group_of, number_of
from read_model.metrics import read_model_metrics


@dataclass
class RebuildStatus:
    state: str = "idle"  # idle, starting, running, swapped, failed
    generation: str | None = None
    replaced: str | None = None
    events_to_replay: int = 0
    behind: int = 0
    seconds: float | None = None
    views: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def rebuild(
    settings: ReadModelSettings,
    generations: Generations,
    registry: CollectorRegistry,
    cache: ViewCache | None,
    swap: Callable[[Feed], Awaitable[Feed | None]],
    status: RebuildStatus,
    *,
    timeout_seconds: float = 600.0,
) -> Feed:
    """Builds the next generation and calls `swap(feed)` once it caught up; `swap` serves it
    and answers the feed it replaced (None offline), whose group this stops and whose store
    this drops. Answers the new feed (its consumer running)."""
    started = time.monotonic()
    name = generations.begin_next()
    status.state, status.generation, status.error = "starting", name, None
    feed = await open_feed(settings, name, generations, registry, cache, live=False)
    try:
        ends = await end_offsets(settings)
        status.events_to_replay, status.state = sum(ends.values()), "running"
        await feed.runner.start()
        group = group_of(settings.read_model_group, name)

        def progress(missing: int) -> None:
            status.behind = missing

        await wait_committed(settings, group, ends, started + timeout_seconds, progress)
        replaced = await swap(feed)
        feed.projector.live = True
    except BaseException as exc:
        await feed.retire()
        await asyncio.to_thread(generations.abandon, name)
        status.state, status.error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    if replaced is not None:
        await replaced.retire()
    status.replaced = replaced.generation if replaced is not None else None
    status.seconds = round(time.monotonic() - started, 3)
    status.views = {kind: await feed.store.count(kind) for kind in views.KINDS}
    status.state = "swapped"
    metrics = read_model_metrics(registry)
    metrics.rebuild_seconds.set(status.seconds)
    metrics.generation.set(number_of(name))
    return feed
