"""The processes of the system, their ports, and the call edges whose timeouts are checked
at start-up. New processes register here; `shop run NAME` and `shop up` read this table."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from fastapi import FastAPI

from infra.settings import Settings
from libs.timeouts import Edge, check_budgets


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    factory: str  # "package.module:function", called with Settings, returns the ASGI app
    port_setting: str  # the Settings field holding its port, e.g. "monolith_port"
    owns: str
    stage: str  # the first stage it takes part in

    def port(self, settings: Settings) -> int:
        return getattr(settings, self.port_setting)

    @property
    def port_env(self) -> str:
        return f"SHOP_{self.port_setting.upper()}"

    def build(self, settings: Settings) -> FastAPI:
        module, _, function = self.factory.partition(":")
        return getattr(importlib.import_module(module), function)(settings)


# Started in this order (Supervisor.start_in_order).
PROCESSES: dict[str, ProcessSpec] = {
    "monolith": ProcessSpec(
        "monolith",
        "monolith.entrypoints.app:create_app",
        "monolith_port",
        "legacy DB: members, products, orders, payments",
        "0",
    ),
    "gateway": ProcessSpec(
        "gateway",
        "gateway.app:create_app",
        "gateway_port",
        "routing, ramp, shadow; console at /console",
        "0",
    ),
    "member-service": ProcessSpec(
        "member-service",
        "services.member.entrypoints.app:create_app",
        "member_port",
        "member DB: members, point ledger",
        "1",
    ),
}


def server_limits(settings: Settings) -> dict[str, float]:
    return {
        "monolith": settings.monolith_server_limit,
        "member-service": settings.member_server_limit,
    }


def call_edges(settings: Settings) -> list[Edge]:
    return [
        Edge("gateway", "monolith", settings.gateway_timeouts),
        Edge("gateway", "member-service", settings.gateway_timeouts),
    ]


def check_process_budgets(name: str, settings: Settings) -> None:
    """Fail fast when a call this process makes, or a call made to it, could time out on the
    caller's side before the callee's own limit: either side's configuration can break it."""
    edges = [e for e in call_edges(settings) if name in (e.caller, e.callee)]
    check_budgets(edges, server_limits(settings))
