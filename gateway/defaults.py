"""Stage 0: every public prefix goes 100% to the monolith. Each route already names the
service that will take it over, at weight 0, so a ramp or a shadow run needs no new route."""

from __future__ import annotations

from typing import Any

DEFAULT_ROUTES: list[tuple[str, str, str | None]] = [
    ("members", "/api/members", "member-service"),
    ("products", "/api/products", None),
    ("orders", "/api/orders", "order-service"),
    ("payments", "/api/payments", "payment-service"),
    ("views", "/api/views", "read-model"),
]


def default_table() -> dict[str, Any]:
    routes = []
    for name, prefix, candidate in DEFAULT_ROUTES:
        weights = {"monolith": 100} | ({candidate: 0} if candidate else {})
        routes.append({"name": name, "prefix": prefix, "weights": weights})
    return {"routes": routes}
