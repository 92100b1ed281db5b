"""Ramps run as tasks inside the gateway, not in the CLI that started them: closing a laptop
lid must not leave a route half-moved with nobody watching. State and history are saved with
the route table; a ramp still running when the gateway stops resumes its step on restart."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from gateway.metrics import GatewayMetrics
from gateway.ramp import RampPlan, Verdict, judge
from gateway.registry import RouteRegistry
from gateway.stats import BackendStats, Counts, window_of

log = logging.getLogger("shop.gateway.ramp")
MAX_PAST = 20


class RampRunning(Exception):
    def __init__(self, route: str) -> None:
        super().__init__(f"a ramp is already running on route '{route}'")
        self.route = route


class RampController:
    def __init__(
        self,
        registry: RouteRegistry,
        stats: BackendStats,
        metrics: GatewayMetrics,
        persist: Callable[[], None],
    ) -> None:
        self.registry = registry
        self.stats = stats
        self.metrics = metrics
        self.persist = persist
        self.ramps: dict[str, dict[str, Any]] = {}  # the latest ramp of each route
        self.past: deque[dict[str, Any]] = deque(maxlen=MAX_PAST)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def running_on(self, route: str) -> bool:
        return self.ramps.get(route, {}).get("state") == "running"

    def start(self, plan: RampPlan, actor: str) -> dict[str, Any]:
        if self.running_on(plan.route):
            raise RampRunning(plan.route)
        if plan.route in self.ramps:
            self.past.appendleft(self.ramps[plan.route])
        ramp = {
            "id": uuid.uuid4().hex[:12],
            "plan": plan.to_dict(),
            "state": "running",
            "started_by": actor,
            "started_at": time.time(),
            "ended_at": None,
            "step_index": 0,
            "percent": 0,
            "reason": "",
            "history": [],
        }
        self.ramps[plan.route] = ramp
        self._launch(plan, ramp)
        return ramp

    def resume(self) -> None:
        for ramp in self.ramps.values():
            if ramp["state"] == "running":
                plan = RampPlan(**{**ramp["plan"], "steps": tuple(ramp["plan"]["steps"])})
                if self.registry.table.get(plan.route) is None:
                    self._finish(plan, ramp, "interrupted", "the route no longer exists")
                    continue
                ramp["history"].append(_note("resumed after a gateway restart"))
                self._launch(plan, ramp)

    async def abort(self, route: str, actor: str) -> dict[str, Any] | None:
        ramp = self.ramps.get(route)
        if ramp is None or ramp["state"] != "running":
            return None
        task = self._tasks.pop(route, None)
        if task:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        plan = RampPlan(**{**ramp["plan"], "steps": tuple(ramp["plan"]["steps"])})
        self._roll_back(plan, ramp, "aborted", f"aborted by {actor}")
        return ramp

    async def close(self) -> None:
        """Stop the tasks but leave their state 'running', so a restart resumes them."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def _launch(self, plan: RampPlan, ramp: dict[str, Any]) -> None:
        task = asyncio.create_task(self._run(plan, ramp), name=f"ramp:{plan.route}")
        self._tasks[plan.route] = task
        task.add_done_callback(lambda _: self._tasks.pop(plan.route, None))

    async def _run(self, plan: RampPlan, ramp: dict[str, Any]) -> None:
        reference: Counts | None = None
        try:
            for index in range(ramp["step_index"], len(plan.steps)):
                verdict, reference = await self._step(plan, ramp, index, reference)
                if verdict.outcome == "breach":
                    self.metrics.ramp_rollbacks.labels(plan.route).inc()
                    self._roll_back(plan, ramp, "rolled_back", verdict.reason)
                    return
                if verdict.outcome == "inconclusive":
                    self._finish(
                        plan, ramp, "stalled", f"held at {ramp['percent']}%: " + verdict.reason
                    )
                    return
            self._finish(plan, ramp, "completed", f"{plan.candidate} reached {ramp['percent']}%")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave traffic half-moved silently
            log.exception("ramp on %s failed", plan.route)
            self._roll_back(plan, ramp, "rolled_back", f"the ramp itself failed: {exc!r}")

    async def _step(
        self, plan: RampPlan, ramp: dict[str, Any], index: int, reference: Counts | None
    ) -> tuple[Verdict, Counts | None]:
        percent = plan.steps[index]
        self._set_percent(plan, ramp, index, percent, f"ramp step {index + 1}/{len(plan.steps)}")
        start, started_at = self.stats.snapshot(), time.monotonic()
        verdict = Verdict("inconclusive", "no window judged yet")
        for _ in range(plan.max_wait_intervals):
            await asyncio.sleep(plan.interval_seconds)
            # Inconclusive windows grow rather than restart: the traffic seen so far counts.
            window = self.stats.since(start)
            candidate = window_of(window, plan.route, plan.candidate)
            baseline = window_of(window, plan.route, plan.baseline)
            if baseline.requests >= plan.min_requests:
                reference = baseline
            verdict = judge(plan, candidate, reference)
            ramp["history"].append(
                {
                    "at": time.time(),
                    "percent": percent,
                    "window_seconds": round(time.monotonic() - started_at, 3),
                    "outcome": verdict.outcome,
                    "reason": verdict.reason,
                    "candidate": candidate.summary(),
                    "baseline": baseline.summary(),
                }
            )
            self.persist()
            if verdict.outcome != "inconclusive":
                break
        return verdict, reference

    def _set_percent(
        self, plan: RampPlan, ramp: dict[str, Any], index: int, percent: int, reason: str
    ) -> None:
        route = self.registry.table.get(plan.route)
        if route is None:
            raise LookupError(f"route '{plan.route}' disappeared during the ramp")
        ramp["step_index"], ramp["percent"] = index, percent
        weights = plan.weights(route, percent)
        if weights != list(route.weights):
            self.registry.set_weights(plan.route, weights, actor="ramp", reason=reason)
        self.metrics.show_ramp(plan.route, plan.candidate, percent, ramp["state"])
        self.persist()

    def _roll_back(self, plan: RampPlan, ramp: dict[str, Any], state: str, reason: str) -> None:
        route = self.registry.table.get(plan.route)
        if route is not None:
            weights = plan.weights(route, 0)
            self.registry.set_weights(plan.route, weights, actor="ramp", reason=reason)
        ramp["percent"] = 0
        log.warning("ramp on %s %s: %s", plan.route, state, reason)
        self._finish(plan, ramp, state, reason)

    def _finish(self, plan: RampPlan, ramp: dict[str, Any], state: str, reason: str) -> None:
        ramp.update(state=state, reason=reason, ended_at=time.time())
        ramp["history"].append(_note(f"{state}: {reason}"))
        self.metrics.show_ramp(plan.route, plan.candidate, ramp["percent"], state)
        self.persist()

    def dump(self) -> dict[str, Any]:
        return {"latest": self.ramps, "past": list(self.past)}

    def restore(self, saved: dict[str, Any] | None) -> None:
        if not saved:
            return
        self.ramps = dict(saved.get("latest", {}))
        self.past = deque(saved.get("past", []), maxlen=MAX_PAST)
        for route, ramp in self.ramps.items():
            self.metrics.show_ramp(
                route, ramp["plan"]["candidate"], ramp.get("percent", 0), ramp["state"]
            )


def _note(text: str) -> dict[str, Any]:
    return {"at": time.time(), "outcome": "note", "reason": text}
