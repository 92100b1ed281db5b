"""The whole migration at a glance, for the console: which stage the live system is at and what
the next one will do, each extraction's data mode, sync lag and drift, every outbox's backlog
and consumer group's lag, the read model's freshness, and which processes are ready.

The gateway already knows where every process answers (the process registry's URLs, as it
routes to them), so it is the one place that can ask them all. It asks concurrently, with short
timeouts, and keeps the answer for about a second: the console polls every second, and several
open tabs must not multiply the load on the processes. A process that does not answer is shown
as down; it never makes this endpoint fail.

The stage is named by the stage engine itself (infra/stages.py): the answers gathered here are
handed to a `StageEngine` that reads them instead of calling the processes again, so the
console and `shop stage show` cannot disagree about what a stage is."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from infra.extractions import EXTRACTIONS, Extraction
from infra.processes import READ_MODEL
from infra.stages import (
    STAGES,
    Endpoints,
    Key,
    Stage,
    StageEngine,
    StageRefused,
    Step,
    Unreachable,
    configuration,
    phase_reached,
)
from libs.response import ServiceError, parse_envelope

# A process that is not listening is refused at once; one that is busy gets two seconds to
# answer (seven processes share two cores under the demo's load: half a second of queueing is
# ordinary there), after which it shows as slow for this round.
TIMEOUT = httpx.Timeout(2.0, connect=0.5)
CACHE_SECONDS = 1.0
# The read model's freshness over this recent window, beside the process lifetime's.
FRESHNESS_WINDOW_SECONDS = 60.0
# The only series read from /metrics: the rest of each exposition is dropped before parsing,
# so a poll costs the gateway's event loop (which proxies the traffic) next to nothing.
SERIES = (
    "shop_sync_lag_seconds",
    "shop_sync_pending_changes",
    "shop_reconcile_drift_rows",
    "shop_outbox_backlog",
    "shop_outbox_oldest_age_seconds",
    "shop_consumer_lag",
    "shop_consumer_parked_events",
    "shop_read_model_freshness_seconds",
)

Samples = list[tuple[str, dict[str, str], float]]  # (sample name, labels, value)


@dataclass
class _Answers:
    """What one round of asking produced: admin answers by (process, path), readiness and
    metrics by process. A missing entry is a process that did not answer."""

    admin: dict[tuple[str, str], Any] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)  # ready, not ready, slow, down
    metrics: dict[str, Samples] = field(default_factory=dict)


@dataclass
class _GatheredEngine(StageEngine):
    """The stage engine observing answers already gathered: it calls no process itself."""

    answers: _Answers = field(default_factory=_Answers)

    def __post_init__(self) -> None:  # no admin client: nothing is called from here
        pass

    def close(self) -> None:
        pass

    def call(self, process: str, method: str, path: str, body: Any = None) -> Any:
        if (process, path) not in self.answers.admin:
            raise Unreachable(f"{process} did not answer {path}")
        return self.answers.admin[(process, path)]

    def _ready(self, process: str) -> bool:
        return self.answers.states.get(process) == "ready"

    def _read(self, step: Step, answers: dict[tuple[str, str], Any]) -> Any:
        try:
            return super()._read(step, answers)
        except StageRefused:  # the answer lacks what the step reads: a route removed by hand
            return None


class MigrationWatch:
    """Gathers the migration's state from every process; `snapshot()` is what
    `GET /admin/migration` answers."""

    def __init__(
        self,
        urls: Mapping[str, str],
        token: str,
        gateway_routes: Callable[[], dict[str, Any]],
        *,
        stages: tuple[Stage, ...] = STAGES,
        extractions: tuple[Extraction, ...] = EXTRACTIONS,
        timeout: httpx.Timeout = TIMEOUT,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        """`urls`: every other process's base URL; `gateway_routes`: the gateway's own route
        table as `GET /admin/routes` shows it, read in-process instead of over HTTP."""
        self.urls = dict(urls)
        self.gateway_routes = gateway_routes
        self.stages = stages
        self.extractions = extractions
        self.cache_seconds = cache_seconds
        self.http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        self._lock = asyncio.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._freshness = RecentWindow(FRESHNESS_WINDOW_SECONDS)

    async def close(self) -> None:
        await self.http.aclose()

    async def snapshot(self) -> dict[str, Any]:
        """The last gather if it is younger than the cache's age, else a new one; concurrent
        callers wait for the same gather."""
        async with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.cache_seconds:
                self._cached = (time.monotonic(), await self._gather())
            return self._cached[1]

    async def _gather(self) -> dict[str, Any]:
        started = time.monotonic()
        answers = await self._ask()
        engine = _GatheredEngine(
            Endpoints(self.urls, ""), stages=self.stages, say=lambda _: None, answers=answers
        )
        observed = engine.observe()
        current = engine.current(observed)
        return {
            "stage": self._stage(engine, observed, current),
            "extractions": [self._extraction(e, answers, current) for e in self.extractions],
            "events": _events(answers, order=list(self.urls)),
            "read_model": self._read_model(answers),
            "processes": [
                {"name": "gateway", "state": "ready", "url": None},
                *(
                    {"name": name, "state": answers.states.get(name, "down"), "url": url}
                    for name, url in self.urls.items()
                ),
            ],
            "gathered_in_ms": round(1000 * (time.monotonic() - started), 1),
            "at": time.time(),
        }

    # --- asking ---

    async def _ask(self) -> _Answers:
        answers = _Answers()
        sources = {
            step.source for step in configuration(len(self.stages) - 1, self.stages).values()
        }
        sources |= {(e.service.name, "/admin/data-mode") for e in self.extractions}
        sources |= {(READ_MODEL, "/admin/read-model")}
        calls = [self._admin(answers, p, path) for p, path in sources if p != "gateway"]
        calls += [self._health(answers, name) for name in self.urls]
        calls += [self._metrics(answers, name) for name in self.urls]
        # The gateway is the one answering: its table is read in-process, and it is ready.
        answers.admin[("gateway", "/admin/routes")] = self.gateway_routes()
        answers.states["gateway"] = "ready"
        await asyncio.gather(*calls)
        return answers

    async def _admin(self, answers: _Answers, process: str, path: str) -> None:
        if process not in self.urls:
            return
        try:
            response = await self.http.get(f"{self.urls[process]}{path}")
            answers.admin[(process, path)] = parse_envelope(response)
        except (httpx.HTTPError, ServiceError, ValueError):
            pass  # down, or this process has no such API: absent

    async def _health(self, answers: _Answers, process: str) -> None:
        try:
            response = await self.http.get(f"{self.urls[process]}/health/ready")
            answers.states[process] = "ready" if response.status_code == 200 else "not ready"
        except (httpx.ConnectError, httpx.ConnectTimeout):
            answers.states[process] = "down"
        except httpx.HTTPError:  # it took the connection but answered nothing in time
            answers.states[process] = "slow"

    async def _metrics(self, answers: _Answers, process: str) -> None:
        try:
            response = await self.http.get(f"{self.urls[process]}/metrics")
            response.raise_for_status()
            answers.metrics[process] = [
                (s.name, s.labels, s.value)
                for family in text_string_to_metric_families(keep_series(response.text, SERIES))
                for s in family.samples
            ]
        except (httpx.HTTPError, ValueError):
            pass

    # --- reading ---

    def _stage(
        self, engine: StageEngine, observed: dict[Key, Any], current: int | None
    ) -> dict[str, Any]:
        last = len(self.stages) - 1
        if current is None:
            closest = engine.closest(observed)
            return {
                "current": None,
                "last": last,
                "closest": _describe(self.stages[closest]),
                "differences": engine.differences(closest, observed),
                "next": None,
            }
        return {
            "current": current,
            "last": last,
            **_describe(self.stages[current]),
            "next": self._next(engine, self.stages[current + 1]) if current < last else None,
        }

    def _next(self, engine: StageEngine, stage: Stage) -> dict[str, Any]:
        """What `shop stage apply N+1` will do, step by step, and the processes it needs that
        are not ready (the engine refuses the move until they are)."""
        return _describe(stage) | {
            "steps": [step.describe() for step in stage.steps],
            "needs": list(stage.needs),
            "missing": [p for p in stage.needs if not engine._ready(p)],
        }

    def _extraction(
        self, extraction: Extraction, answers: _Answers, current: int | None
    ) -> dict[str, Any]:
        service = extraction.service.name
        mode = answers.admin.get((service, "/admin/data-mode"))
        samples = answers.metrics.get(service, [])
        migration = {"migration": extraction.name}
        phase = (
            phase_reached(current, extraction.name, self.stages) if current is not None else None
        )
        return {
            "name": extraction.name,
            "service": service,
            "up": answers.states.get(service, "down") != "down",
            "phase": phase,
            "mode": mode.get("mode") if isinstance(mode, dict) else None,
            "sync": {
                "lag_seconds": _value(samples, "shop_sync_lag_seconds", migration),
                "pending": _value(samples, "shop_sync_pending_changes", migration),
            },
            # The last reconcile's finding, where the service exports one.
            "drift_rows": _value(samples, "shop_reconcile_drift_rows", migration),
        }

    def _read_model(self, answers: _Answers) -> dict[str, Any]:
        admin = answers.admin.get((READ_MODEL, "/admin/read-model"))
        buckets = _buckets(answers.metrics.get(READ_MODEL, []), "shop_read_model_freshness_seconds")
        recent = self._freshness.add(buckets) if buckets else {}
        return {
            "up": answers.states.get(READ_MODEL, "down") != "down",
            "generation": admin.get("generation") if isinstance(admin, dict) else None,
            "views": admin.get("views") if isinstance(admin, dict) else None,
            "freshness": {
                "lifetime": _quantiles(buckets),
                "recent": _quantiles(recent) | {"window_seconds": FRESHNESS_WINDOW_SECONDS},
            },
        }


def _describe(stage: Stage) -> dict[str, Any]:
    return {"number": stage.number, "name": stage.name, "traffic": stage.traffic,
            "data": stage.data, "watch": stage.watch}  # fmt: skip


def _events(answers: _Answers, order: list[str]) -> dict[str, Any]:
    """Every outbox and consumer group the processes export, in the process table's order."""
    outboxes, consumers = [], []
    for process in (p for p in order if p in answers.metrics):
        samples = answers.metrics[process]
        for name, labels, value in samples:
            if name == "shop_outbox_backlog":  # labelled by its process: one set per registry
                age = _value(samples, "shop_outbox_oldest_age_seconds", labels)
                outboxes.append({"process": labels.get("process", process), "backlog": value,
                                 "oldest_age_seconds": age})  # fmt: skip
        lag = _per_group(samples, "shop_consumer_lag")  # summed over its partitions
        parked = _per_group(samples, "shop_consumer_parked_events")
        for group in sorted(set(lag) | set(parked)):
            consumers.append({"process": process, "group": group, "lag": lag.get(group),
                              "parked": parked.get(group)})  # fmt: skip
    return {"outboxes": outboxes, "consumers": consumers}


def _per_group(samples: Samples, name: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for sample, labels, value in samples:
        if sample == name:
            totals[labels["group"]] = totals.get(labels["group"], 0.0) + value
    return totals


def keep_series(exposition: str, names: tuple[str, ...]) -> str:
    """The lines of a Prometheus exposition that belong to these metric families (their
    samples, `_bucket`/`_sum`/`_count` included, and their HELP and TYPE comments)."""
    kept = []
    for line in exposition.splitlines():
        parts = line.split(" ", 3) if line.startswith("#") else [line]
        name = parts[2] if len(parts) > 2 else parts[0]
        if name.startswith(names):
            kept.append(line)
    return "\n".join(kept) + "\n"


def _value(samples: Samples, name: str, labels: Mapping[str, str]) -> float | None:
    for sample, found, value in samples:
        if sample == name and all(found.get(k) == v for k, v in labels.items()):
            return value
    return None


def _buckets(samples: Samples, histogram: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts by upper bound (inf included)."""
    return {
        float(labels["le"]): value
        for name, labels, value in samples
        if name == f"{histogram}_bucket"
    }


def _quantiles(buckets: Mapping[float, float]) -> dict[str, Any]:
    count = buckets.get(math.inf, 0.0)
    return {
        "count": count,
        "p50_seconds": _rounded(quantile(buckets, 0.5)),
        "p99_seconds": _rounded(quantile(buckets, 0.99)),
    }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 4)


def quantile(buckets: Mapping[float, float], q: float) -> float | None:
    """As Prometheus's histogram_quantile: linear within the bucket the rank falls in; the
    highest finite bound when it falls in the +Inf bucket."""
    bounds = sorted(buckets)
    total = buckets.get(math.inf, 0.0)
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


class RecentWindow:
    """A cumulative histogram's increase over the last `seconds`: kept readings, the oldest
    one inside the window subtracted from the newest."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.readings: deque[tuple[float, dict[float, float]]] = deque()

    def add(self, buckets: dict[float, float]) -> dict[float, float]:
        now = time.monotonic()
        if self.readings and buckets.get(math.inf, 0) < self.readings[-1][1].get(math.inf, 0):
            self.readings.clear()  # the process restarted: its counts began again
        self.readings.append((now, buckets))
        # The base is the newest reading at least `seconds` old (or the oldest kept).
        while len(self.readings) > 1 and now - self.readings[1][0] >= self.seconds:
            self.readings.popleft()
        oldest = self.readings[0][1]
        return {bound: count - oldest.get(bound, 0.0) for bound, count in buckets.items()}
