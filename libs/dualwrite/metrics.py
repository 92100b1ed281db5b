"""Metrics of the data migration, registered once per registry the caller passes in."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from libs.metric_sets import per_registry

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class MigrationMetrics:
    sync_lag: Gauge
    sync_pending: Gauge
    sync_rows_applied: Counter
    sync_batches: Counter
    write_seconds: Histogram
    writes: Counter
    mode: Gauge
    in_doubt_resolved: Counter
    reconcile_drift_rows: Gauge
    reconcile_runs: Counter


def migration_metrics(registry: CollectorRegistry | None) -> MigrationMetrics:
    """The metric set for this registry (a private one when None, so tests stay isolated)."""
    return _create(registry if registry is not None else CollectorRegistry())


@per_registry
def _create(registry: CollectorRegistry) -> MigrationMetrics:
    def gauge(name: str, doc: str, labels: tuple[str, ...]) -> Gauge:
        return Gauge(name, doc, labels, registry=registry)

    return MigrationMetrics(
        sync_lag=gauge(
            "shop_sync_lag_seconds",
            "Age of the oldest legacy change not yet synced.",
            ("migration",),
        ),
        sync_pending=gauge(
            "shop_sync_pending_changes", "Legacy changes not yet synced.", ("migration",)
        ),
        sync_rows_applied=Counter(
            "shop_sync_rows_applied",
            "Rows the sync job wrote to the new DB.",
            ("migration", "table", "op"),
            registry=registry,
        ),
        sync_batches=Counter(
            "shop_sync_batches", "Sync batches run.", ("migration", "outcome"), registry=registry
        ),
        write_seconds=Histogram(
            "shop_dual_write_duration_seconds",
            "Duration of one write transaction through the migration writer.",
            ("migration", "mode"),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        ),
        writes=Counter(
            "shop_dual_write_transactions",
            "Write transactions through the migration writer.",
            ("migration", "mode", "outcome"),
            registry=registry,
        ),
        mode=gauge("shop_dual_write_mode", "1 for the current data mode.", ("migration", "mode")),
        in_doubt_resolved=Counter(
            "shop_dual_write_in_doubt_resolved",
            "Prepared transactions finished by recovery.",
            ("migration", "decision"),
            registry=registry,
        ),
        reconcile_drift_rows=gauge(
            "shop_reconcile_drift_rows",
            "Rows that differ between the two DBs at the last reconcile (missing, extra, "
            "changed, dangling references), less what a repair fixed.",
            ("migration",),
        ),
        reconcile_runs=Counter(
            "shop_reconcile_runs",
            "Reconcile checks run, by outcome: clean or drift.",
            ("migration", "outcome"),
            registry=registry,
        ),
    )
