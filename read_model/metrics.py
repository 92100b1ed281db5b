"""The read model's own metrics, beside the HTTP and consumer ones every process has."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from libs.metric_sets import per_registry


@dataclass(frozen=True)
class ReadModelMetrics:
    freshness: Histogram
    events: Counter
    conflicts: Counter
    cache: Counter
    generation: Gauge
    rebuild_seconds: Gauge


@per_registry
def read_model_metrics(registry: CollectorRegistry) -> ReadModelMetrics:
    return ReadModelMetrics(
        Histogram(
            "shop_read_model_freshness_seconds",
            "From an event's occurred_at (its owner's commit) to the view change it caused "
            "being stored: how far behind the owners a view is.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
            registry=registry,
        ),
        Counter(
            "shop_read_model_view_changes",
            "Changes events made to views, by outcome: applied, held (ahead of a missing "
            "earlier event of its aggregate) or unchanged (a duplicate or an older event).",
            ["kind", "outcome"],
            registry=registry,
        ),
        Counter(
            "shop_read_model_write_conflicts",
            "Version-guarded view writes that lost to another writer and were redone.",
            registry=registry,
        ),
        Counter(
            "shop_read_model_cache_reads",
            "View reads by the cache's answer: hit, miss (read from the store, then "
            "filled), error (Redis away: read from the store) or off (no SHOP_REDIS_URL).",
            ["outcome"],
            registry=registry,
        ),
        Gauge(
            "shop_read_model_generation",
            "The number of the view generation being served (a rebuild serves the next).",
            registry=registry,
        ),
        Gauge(
            "shop_read_model_rebuild_seconds",
            "How long the last rebuild took, from its start to the swap.",
            registry=registry,
        ),
    )
