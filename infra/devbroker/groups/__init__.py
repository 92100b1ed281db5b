"""Consumer groups with the classic (eager) rebalance protocol and static membership."""

from infra.devbroker.groups.coordinator import GroupCoordinator

__all__ = ["GroupCoordinator"]
