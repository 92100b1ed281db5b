"""The gateway's Prometheus metrics: per route and backend, so a dashboard (and the ramp) can
see the new service beside the old one. Names follow shop_<process>_<thing>_<unit>."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from libs.observability.metrics import LATENCY_BUCKETS
from libs.routing import RouteTable

RAMP_STATES = ("running", "completed", "rolled_back", "aborted", "stalled", "interrupted")


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "shop_gateway_requests_total",
            "Requests proxied, by route, backend and status code.",
            ["route", "backend", "status"],
            registry=registry,
        )
        self.errors = Counter(
            "shop_gateway_upstream_errors_total",
            "Proxied requests that failed: 5xx answers, unreachable or slow backends.",
            ["route", "backend", "kind"],
            registry=registry,
        )
        self.latency = Histogram(
            "shop_gateway_request_duration_seconds",
            "Time from the gateway sending a request to the backend's full answer.",
            ["route", "backend"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "shop_gateway_retries_total",
            "Idempotent requests sent again after a connection to the backend failed.",
            ["route", "backend"],
            registry=registry,
        )
        self.weight = Gauge(
            "shop_gateway_route_weight",
            "Current weight of a backend on a route.",
            ["route", "backend"],
            registry=registry,
        )
        self.share = Gauge(
            "shop_gateway_route_share_ratio",
            "Current share of a route's members sent to a backend (0..1).",
            ["route", "backend"],
            registry=registry,
        )
        self.ramp_percent = Gauge(
            "shop_gateway_ramp_percent",
            "The candidate's share in the current or last ramp of a route (0..100).",
            ["route", "candidate"],
            registry=registry,
        )
        self.ramp_state = Gauge(
            "shop_gateway_ramp_state",
            "1 for the state the latest ramp of a route is in, 0 for the others.",
            ["route", "state"],
            registry=registry,
        )
        self.ramp_rollbacks = Counter(
            "shop_gateway_ramp_rollbacks_total",
            "Ramps rolled back to 0% because a step breached the gate.",
            ["route"],
            registry=registry,
        )
        self.shadow = Counter(
            "shop_gateway_shadow_comparisons_total",
            "Mirrored requests, by route and outcome (match, mismatch, error, dropped).",
            ["route", "outcome"],
            registry=registry,
        )
        self._weights_seen: set[tuple[str, str]] = set()
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, backend: str, status: int, seconds: float) -> None:
        """Count one proxied request. Label children are cached: looking them up by label
        values on every request costs more than the counting itself."""
        key = (route, backend, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(route, backend, str(status)),
                self.latency.labels(route, backend),
            )
        children[0].inc()
        children[1].observe(seconds)

    def show_weights(self, table: RouteTable) -> None:
        current = set()
        for route in table.routes:
            total = sum(w for _, w in route.weights)
            for backend, weight in route.weights:
                self.weight.labels(route.name, backend).set(weight)
                self.share.labels(route.name, backend).set(weight / total)
                current.add((route.name, backend))
        for gone in self._weights_seen - current:
            self.weight.remove(*gone)
            self.share.remove(*gone)
        self._weights_seen = current

    def show_ramp(self, route: str, candidate: str, percent: int, state: str) -> None:
        self.ramp_percent.labels(route, candidate).set(percent)
        for name in RAMP_STATES:
            self.ramp_state.labels(route, name).set(1 if name == state else 0)
