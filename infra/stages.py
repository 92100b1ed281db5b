"""The migration stages as data, and the engine that moves a running system between them.

A stage is the configuration of the whole system: gateway weights per route, each service's
data mode, each process's feature switches. Each stage after 0 declares the steps that lead
into it from the stage before, in the order they must happen; the stage's configuration is
its predecessor's with those steps applied. The engine

- observes the running system through the admin APIs and names the stage it is in;
- moves one stage forward by applying that stage's steps in order, and one stage back by
  restoring the earlier stage's values in the reverse order (undo runs backwards);
- refuses to skip a stage unless forced (forced, it still walks every stage in between);
- undoes the steps already taken when a step is refused (drift blocking the cutover, a ramp
  rolling back), so the system is always left at a declared stage.

The engine knows steps only through the `Step` protocol (where the live value is read, how it
is picked out, applied and described), so a new kind of setting is a new step class, not a
new branch in the engine. The stages themselves are derived from the declared extractions
(infra/extractions.py): a new extraction is four new stages without a line here."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import httpx

from infra.admin import AdminClient, AdminUnreachable
from infra.extractions import EXTRACTIONS, PHASES, Extraction, Phase, waves
from infra.processes import PROCESSES, READ_MODEL, ProcessSpec
from infra.processes import urls as process_urls
from libs.response import ServiceError

Key = tuple[str, ...]  # what a step sets, e.g. ("route", "members") or ("feature", "monolith", "x")


class Admin(Protocol):
    """What a step needs of the engine: the processes' admin APIs, the ramp's options, a
    voice for progress."""

    ramp: RampOptions

    def call(self, process: str, method: str, path: str, body: Any = None) -> Any: ...

    def route_table(self) -> dict[str, Any]: ...

    def put_route_table(self, table: Mapping[str, Any], reason: str) -> Any: ...

    def say(self, line: str) -> None: ...


class Step(Protocol):
    """One setting of the running system. The engine knows steps only through this: where the
    live value is read (one GET per source, shared by every step reading it), how it is picked
    out of that answer, how it is applied, and how it reads to a person."""

    @property
    def key(self) -> Key: ...

    @property
    def value(self) -> Any: ...

    @property
    def source(self) -> tuple[str, str]: ...  # (process, admin path)

    def read(self, answer: Any) -> Any: ...

    def apply(self, admin: Admin, *, forward: bool) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Weights:
    """A gateway route's weights. With `ramp`, forward moves go through a metric-gated ramp
    over these candidate percentages instead of one jump; backward moves are always a jump."""

    route: str
    weights: Mapping[str, int]
    ramp: tuple[int, ...] = ()

    @property
    def key(self) -> Key:
        return ("route", self.route)

    @property
    def value(self) -> Any:
        return dict(self.weights)

    @property
    def source(self) -> tuple[str, str]:
        return ("gateway", "/admin/routes")

    def read(self, answer: Any) -> Any:
        return _route(answer, self.route)["weights"]

    def apply(self, admin: Admin, *, forward: bool) -> None:
        table = admin.route_table()
        if forward and self.ramp:
            self._ramp(admin, _route(table, self.route)["weights"])
            return
        _route(table, self.route)["weights"] = dict(self.weights)
        admin.put_route_table(table, "stage engine")

    def _ramp(self, admin: Admin, live: Mapping[str, int]) -> None:
        """Moves the share to the backend this step gives the most, away from the one that
        carries the most of it now (any number of backends: the others keep their weights)."""
        candidate = max(self.weights, key=lambda b: self.weights[b])
        others = [b for b in live if b != candidate] or [b for b in self.weights if b != candidate]
        baseline = max(others, key=lambda b: live.get(b, 0))
        plan = {"route": self.route, "candidate": candidate, "baseline": baseline}
        plan |= {"steps": list(self.ramp)} | admin.ramp.plan_fields()
        admin.call("gateway", "POST", "/admin/ramps", plan)
        deadline, shown = time.monotonic() + admin.ramp.timeout_seconds, 0
        while True:
            ramp = admin.call("gateway", "GET", f"/admin/ramps/{self.route}")
            for entry in ramp["history"][shown:]:
                if "percent" in entry:
                    admin.say(f"        ramp {entry['percent']:>3}%  {entry['outcome']}")
            shown = len(ramp["history"])
            if ramp["state"] == "completed":
                return
            if ramp["state"] != "running":
                raise StageRefused(f"the ramp ended {ramp['state']}: {ramp['reason']}")
            if time.monotonic() > deadline:
                admin.call("gateway", "POST", f"/admin/ramps/{self.route}/abort")
                raise StageRefused(f"the ramp did not finish in {admin.ramp.timeout_seconds:g}s")
            time.sleep(0.25)

    def describe(self) -> str:
        total = sum(self.weights.values()) or 1
        split = " : ".join(f"{b} {100 * w // total}%" for b, w in self.weights.items())
        how = f" (metric-gated ramp through {', '.join(f'{p}%' for p in self.ramp)})"
        return f"gateway route {self.route}: {split}" + (how if self.ramp else "")


@dataclass(frozen=True)
class DataMode:
    process: str
    mode: str

    @property
    def key(self) -> Key:
        return ("data-mode", self.process)

    @property
    def value(self) -> Any:
        return self.mode

    @property
    def source(self) -> tuple[str, str]:
        return (self.process, "/admin/data-mode")

    def read(self, answer: Any) -> Any:
        return answer["mode"]

    def apply(self, admin: Admin, *, forward: bool) -> None:
        admin.call(self.process, "PUT", "/admin/data-mode", {"mode": self.mode})

    def describe(self) -> str:
        return f"{self.process} data mode: {self.mode}"


@dataclass(frozen=True)
class Feature:
    process: str
    name: str
    setting: str

    @property
    def key(self) -> Key:
        return ("feature", self.process, self.name)

    @property
    def value(self) -> Any:
        return self.setting

    @property
    def source(self) -> tuple[str, str]:
        return (self.process, "/admin/features")

    def read(self, answer: Any) -> Any:
        return answer["features"].get(self.name)

    def apply(self, admin: Admin, *, forward: bool) -> None:
        body = {"features": {self.name: self.setting}}
        admin.call(self.process, "PUT", "/admin/features", body)

    def describe(self) -> str:
        return f"{self.process} feature {self.name}: {self.setting}"


@dataclass(frozen=True)
class Stage:
    number: int
    name: str
    traffic: str
    data: str
    steps: tuple[Step, ...]
    needs: tuple[str, ...] = ()  # processes that must be running
    watch: str = ""  # what to look at while the stage runs
    extraction: str = ""  # the wave it moves: an extraction's name, or its wave's
    phase: Phase | None = None
    extractions: tuple[str, ...] = ()  # the extractions it moves (one, or a wave's)


def stages_of(extractions: tuple[Extraction, ...]) -> tuple[Stage, ...]:
    """Stage 0 (everything on the monolith), then four stages per wave of extractions, in
    order: shared DB + the first share, the metric-gated ramp, dual write, single write. The
    extractions of one wave take each step together, in their declared order."""
    base = ("gateway", "monolith")
    zero: list[Step] = []
    for e in extractions:
        zero += [Weights(r, {"monolith": 100, e.service.name: 0}) for r in e.routes]
        zero += [Feature("monolith", name, value) for name, value in e.features.get("before", ())]
    stages = [Stage(0, "monolith", "all to the monolith", "legacy DB only", tuple(zero), base)]
    needs: tuple[str, ...] = base
    for wave in waves(extractions):
        needs = (*needs, *(e.service.name for e in wave))
        steps: dict[Phase, list[Step]] = {phase: [] for phase in PHASES}
        for e in wave:
            for phase, taken in _steps(e).items():
                steps[phase] += taken
        for phase in PHASES:
            text = wave[0].text(phase, wave)
            stages.append(
                Stage(
                    len(stages),
                    text.name,
                    text.traffic,
                    text.data,
                    tuple(steps[phase]),
                    needs,
                    text.watch,
                    extraction=wave[0].wave_name,
                    phase=phase,
                    extractions=tuple(e.name for e in wave),
                )
            )
    return tuple(stages)


def _steps(e: Extraction) -> dict[Phase, tuple[Step, ...]]:
    """One extraction's part of each of its wave's stages."""
    service = e.service.name
    share = {"monolith": 100 - e.first_share, service: e.first_share}
    every = {"monolith": 0, service: 100}

    def flips(phase: Phase) -> tuple[Step, ...]:
        return tuple(Feature("monolith", n, v) for n, v in e.features.get(phase, ()))

    return {
        "shared": (DataMode(service, "shared"), *(Weights(r, share) for r in e.routes)),
        "ramp": tuple(Weights(r, every, ramp=e.ramp) for r in e.routes),
        "dual": (*flips("dual"), DataMode(service, "dual")),
        "single": (*flips("single"), DataMode(service, "single")),
    }


VIEWS_ROUTE = "views"
VIEWS_RAMP = (50, 100)


def with_read_model(stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
    """The stage after every extraction: the CQRS front server. No data moves; the views are
    new, built from the events every owner announces. Until this stage the monolith answers
    /api/views by composing each page from the owners (fan-out); here the route ramps to the
    read model, metric-gated like every other route, and stage 0 sets it back."""
    back = Weights(VIEWS_ROUTE, {"monolith": 100, READ_MODEL: 0})
    zero = replace(stages[0], steps=(*stages[0].steps, back))
    last = stages[-1]
    front = Stage(
        len(stages),
        "CQRS read model",
        "views route 5:5 -> 0:10 monolith : read-model, metric-gated, rolled back on a breach",
        "views built from events in the read model's store; the owners' DBs unchanged",
        (Weights(VIEWS_ROUTE, {"monolith": 0, READ_MODEL: 100}, ramp=VIEWS_RAMP),),
        (*last.needs, READ_MODEL),
        "read-model freshness (shop_read_model_freshness_seconds) and cache hit ratio",
        extraction=READ_MODEL,
    )
    return (zero, *stages[1:], front)


STAGES: tuple[Stage, ...] = with_read_model(stages_of(EXTRACTIONS))


def phase_reached(number: int, extraction: str, stages: tuple[Stage, ...] = STAGES) -> Phase | None:
    """How far an extraction (or a wave) has come at stage `number`: its latest phase, None
    before it."""
    phases = [
        s.phase
        for s in stages[: number + 1]
        if s.extraction == extraction or extraction in s.extractions
    ]
    return phases[-1] if phases else None


def writes_held_by(
    number: int, extraction: str, stages: tuple[Stage, ...] = STAGES
) -> tuple[str, ...]:
    """Where an extraction's acknowledged writes must be found at stage `number`: the
    "legacy" DB, the "new" one, or both (dual write)."""
    phase = phase_reached(number, extraction, stages)
    return {"dual": ("legacy", "new"), "single": ("new",)}.get(phase or "", ("legacy",))


def configuration(number: int, stages: tuple[Stage, ...] = STAGES) -> dict[Key, Step]:
    """Everything stage `number` sets: its predecessors' steps overlaid with its own."""
    config: dict[Key, Step] = {}
    for stage in stages[: number + 1]:
        config |= {step.key: step for step in stage.steps}
    return config


class StageRefused(RuntimeError):
    """A move the engine will not make, or a step a process refused (already undone)."""


@dataclass
class Endpoints:
    """Where each process's admin API answers: the process registry's URLs."""

    urls: dict[str, str]
    token: str

    @classmethod
    def from_registry(
        cls, token: str, processes: Mapping[str, ProcessSpec] = PROCESSES
    ) -> Endpoints:
        return cls(process_urls(processes), token)


@dataclass
class RampOptions:
    """Overrides of the gateway's ramp defaults (SHOP_GATEWAY_RAMP_*); None keeps them."""

    interval_seconds: float | None = None
    min_requests: int | None = None
    p99_ratio: float | None = None
    p99_slack_ms: float | None = None
    max_wait_intervals: int | None = None
    timeout_seconds: float = 900.0

    def plan_fields(self) -> dict[str, Any]:
        fields = {k: v for k, v in vars(self).items() if k != "timeout_seconds"}
        return {k: v for k, v in fields.items() if v is not None}


@dataclass
class StageEngine:
    endpoints: Endpoints
    ramp: RampOptions = field(default_factory=RampOptions)
    stages: tuple[Stage, ...] = STAGES
    say: Callable[[str], None] = print
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(60.0, connect=2.0))
    # False sets a ramped route's weights in one jump: a system without traffic (`shop up
    # --stage N`) has nothing for a metric-gated ramp to judge.
    ramps: bool = True

    def __post_init__(self) -> None:
        self.admin = AdminClient(self.endpoints.urls, self.endpoints.token, timeout=self.timeout)

    def close(self) -> None:
        self.admin.close()

    # --- observing ---

    def observe(self) -> dict[Key, Any]:
        """The live value of every key any stage sets; None where the process is down."""
        answers: dict[tuple[str, str], Any] = {}  # one GET per admin resource, not per key
        return {
            key: self._read(step, answers)
            for key, step in configuration(len(self.stages) - 1, self.stages).items()
        }

    def current(self, observed: dict[Key, Any] | None = None) -> int | None:
        """The highest stage whose whole configuration the system shows, or None."""
        observed = self.observe() if observed is None else observed
        matches = [
            stage.number
            for stage in self.stages
            if all(observed.get(k) == step.value for k, step in self._config(stage.number).items())
            and self._running(stage)
        ]
        # Stage 0 leaves the member service's keys unset; a later stage that matches wins.
        return max(matches) if matches else None

    def closest(self, observed: dict[Key, Any]) -> int:
        """The stage the observed system differs least from."""
        return min(range(len(self.stages)), key=lambda n: len(self.differences(n, observed)))

    def differences(self, number: int, observed: dict[Key, Any]) -> list[str]:
        return [
            f"{' '.join(key)}: expected {json.dumps(step.value)}, found {json.dumps(observed[key])}"
            for key, step in self._config(number).items()
            if observed.get(key) != step.value
        ]

    # --- moving ---

    def apply(self, target: int, *, force: bool = False) -> int:
        """Moves the running system to stage `target`; returns the stage it ends at."""
        if not 0 <= target < len(self.stages):
            raise StageRefused(f"no stage {target}; stages are 0-{len(self.stages) - 1}")
        observed = self.observe()
        current = self.current(observed)
        if current is None:
            closest = self.closest(observed)
            raise StageRefused(
                "the system is at no declared stage; closest is stage "
                f"{closest}, which differs in:\n  "
                + "\n  ".join(self.differences(closest, observed))
            )
        if abs(target - current) > 1 and not force:
            raise StageRefused(
                f"the system is at stage {current}; moving to {target} skips "
                f"{abs(target - current) - 1} stage(s). Apply them one at a time, or pass "
                "--force to walk through each of them in turn."
            )
        if target == current:
            self.say(f"already at stage {current}: {self.stages[current].name}")
            return current
        direction = 1 if target > current else -1
        while current != target:
            following = current + direction
            self._move(current, following)
            current = following
        return current

    def _move(self, current: int, target: int) -> None:
        stage = self.stages[max(current, target)]
        missing = [p for p in self.stages[target].needs if not self._ready(p)]
        if missing:
            raise StageRefused(
                f"stage {target} needs {', '.join(missing)} running and ready "
                f"(start it with `shop run {missing[0]}`, or `shop up`)"
            )
        forward = target > current
        self.say(f"stage {current} -> {target}: {self.stages[target].name}")
        earlier = self._config(min(current, target))
        steps = stage.steps if forward else tuple(reversed(stage.steps))
        done: list[Step] = []
        for step in steps:
            goal = step if forward else earlier.get(step.key)
            if goal is None:
                continue
            if not self.ramps and isinstance(goal, Weights):
                goal = replace(goal, ramp=())  # the same weights, in one jump
            started = time.monotonic()
            try:
                self._set(goal, ramp=forward)
            except StageRefused as exc:
                # The refused step may have moved part way (a ramp rolls back to 0%): it is
                # undone with the rest.
                where = self._undo([*done, goal], self._config(current), current)
                raise StageRefused(
                    f"stage {target} refused at '{goal.describe()}': {exc}\n{where}"
                ) from exc
            done.append(goal)
            self.say(f"  done  {goal.describe()}  ({time.monotonic() - started:.2f}s)")

    def _undo(self, done: list[Step], config: dict[Key, Step], current: int) -> str:
        for step in reversed(done):
            previous = config[step.key]
            try:
                self._set(previous, ramp=False)
            except StageRefused as exc:
                return (
                    f"undoing '{step.describe()}' failed too ({exc}): the system is between "
                    f"stages; `shop stage show` lists what differs from stage {current}"
                )
            self.say(f"  back  {previous.describe()}")
        return f"the system is back at stage {current}"

    def _config(self, number: int) -> dict[Key, Step]:
        return configuration(number, self.stages)

    # --- one step ---

    def _set(self, step: Step, *, ramp: bool) -> None:
        step.apply(self, forward=ramp)

    def _read(self, step: Step, answers: dict[tuple[str, str], Any]) -> Any:
        if step.source not in answers:
            try:
                process, path = step.source
                answers[step.source] = self.call(process, "GET", path)
            except Unreachable:
                answers[step.source] = None
        answer = answers[step.source]
        return None if answer is None else step.read(answer)

    def _running(self, stage: Stage) -> bool:
        return all(self._ready(p) for p in stage.needs)

    def _ready(self, process: str) -> bool:
        return self.admin.ready(process)

    def call(self, process: str, method: str, path: str, body: Any = None) -> Any:
        with _as_refusal(process):
            return self.admin.call(process, method, path, body)

    def route_table(self) -> dict[str, Any]:
        with _as_refusal("gateway"):
            return self.admin.route_table()

    def put_route_table(self, table: Mapping[str, Any], reason: str) -> Any:
        with _as_refusal("gateway"):
            return self.admin.put_route_table(table, reason)


@contextmanager
def _as_refusal(process: str) -> Iterator[None]:
    """A process's error envelope or silence, as the refusal the engine undoes steps on."""
    try:
        yield
    except ServiceError as exc:
        raise StageRefused(f"{process} answered {exc.status} {exc.code}: {exc.message}") from exc
    except AdminUnreachable as exc:
        raise Unreachable(str(exc)) from exc


class Unreachable(StageRefused):
    pass


def _route(table: dict[str, Any], name: str) -> dict[str, Any]:
    for route in table["routes"]:
        if route["name"] == name:
            return route
    raise StageRefused(f"the gateway has no route {name!r}")
