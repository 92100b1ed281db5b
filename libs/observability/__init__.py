"""Metrics, health, structured logs and graceful shutdown: what lets the talk's
"metric-based monitoring" catch a failure right after a deploy."""

from libs.observability.health import Readiness, health_router
from libs.observability.logging import configure_logging
from libs.observability.metrics import HttpMetrics, metrics_router
from libs.observability.shutdown import serve

__all__ = [
    "HttpMetrics",
    "Readiness",
    "configure_logging",
    "health_router",
    "metrics_router",
    "serve",
]
