"""The processes of the system: the monolith, the gateway, one service per declared
extraction (infra/extractions.py), and the read model. Each process reads its own settings
class; where it answers, its server limit and the call edges whose timeouts are checked at
start-up all come from this table. `shop run NAME`, `shop up`, the stage engine and the demo
read it."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from infra.extractions import EXTRACTIONS, PHASES, Extraction, waves
from infra.settings import (
    GatewaySettings,
    MonolithSettings,
    ReadModelSettings,
    SharedSettings,
    load_settings,
)
from libs.timeouts import Edge, check_budgets

READ_MODEL = "read-model"


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    factory: str  # "package.module:function", called with its settings, returns the ASGI app
    settings: type[SharedSettings]
    port_field: str  # the settings field holding its port, e.g. "monolith_port"
    limit_field: str  # the settings field holding its own answer limit
    owns: str
    stage: int  # the first stage it takes part in

    def load(self, **overrides: Any) -> Any:
        """This process's settings, from the environment (and these overrides)."""
        return load_settings(self.settings, **overrides)

    def port(self, settings: SharedSettings | None = None) -> int:
        return getattr(settings if settings is not None else self.load(), self.port_field)

    @property
    def port_env(self) -> str:
        return str(self.settings.model_fields[self.port_field].validation_alias)

    def server_limit(self, settings: SharedSettings | None = None) -> float:
        return getattr(settings if settings is not None else self.load(), self.limit_field)

    def build(self, settings: SharedSettings) -> FastAPI:
        module, _, function = self.factory.partition(":")
        return getattr(importlib.import_module(module), function)(settings)


def processes_of(extractions: tuple[Extraction, ...]) -> dict[str, ProcessSpec]:
    """The table for these extractions, in start-up order (Supervisor.start_in_order)."""
    table = {
        "monolith": ProcessSpec(
            "monolith",
            "monolith.entrypoints.app:create_app",
            MonolithSettings,
            "monolith_port",
            "monolith_server_limit",
            "legacy DB: members, products, orders, payments",
            0,
        ),
        "gateway": ProcessSpec(
            "gateway",
            "gateway.app:create_app",
            GatewaySettings,
            "gateway_port",
            "gateway_server_limit",
            "routing, ramp, shadow; console at /console",
            0,
        ),
    }
    for index, wave in enumerate(waves(extractions)):
        for extraction in wave:
            service = extraction.service
            table[service.name] = ProcessSpec(
                service.name,
                service.factory,
                service.settings,
                "port",
                "server_limit",
                service.owns,
                1 + len(PHASES) * index,
            )
    # The CQRS front server comes after every extraction: it reads what they all announce.
    table[READ_MODEL] = ProcessSpec(
        READ_MODEL,
        "read_model.entrypoints.app:create_app",
        ReadModelSettings,
        "read_model_port",
        "read_model_server_limit",
        "views built from events (my page, order detail)",
        1 + len(PHASES) * len(waves(extractions)),
    )
    return table


PROCESSES = processes_of(EXTRACTIONS)


def urls(
    processes: Mapping[str, ProcessSpec] = PROCESSES, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every process's base URL, from its own settings, unless overridden by name."""
    found = {}
    for name, spec in processes.items():
        settings = spec.load()
        found[name] = settings.url(spec.port(settings))
    return found | dict(overrides or {})


def grpc_target(service: str, processes: Mapping[str, ProcessSpec] = PROCESSES) -> str:
    """host:port of a service's gRPC server, from its own settings."""
    return processes[service].load().grpc_target


def call_edges(
    gateway: GatewaySettings,
    processes: Mapping[str, ProcessSpec],
    extractions: tuple[Extraction, ...] = EXTRACTIONS,
) -> list[Edge]:
    """The gateway calls every other process with its read timeout; each service calls the
    processes its declaration names with its own call timeouts."""
    timeouts = gateway.gateway_timeouts
    edges = [Edge("gateway", name, timeouts) for name in processes if name != "gateway"]
    for e in extractions:
        if e.service.calls and e.service.name in processes:
            own = processes[e.service.name].load()
            edges += [Edge(e.service.name, callee, own.call_timeouts) for callee in e.service.calls]
    return edges


def check_process_budgets(name: str, processes: Mapping[str, ProcessSpec] = PROCESSES) -> None:
    """Fail fast when a call this process makes, or a call made to it, could time out on the
    caller's side before the callee's own limit: either side's configuration can break it."""
    gateway = processes["gateway"].load()
    edges = [e for e in call_edges(gateway, processes) if name in (e.caller, e.callee)]
    limits = {n: spec.server_limit() for n, spec in processes.items() if n != "gateway"}
    check_budgets(edges, limits)
