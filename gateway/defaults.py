"""Stage 0: every public prefix goes 100% to the monolith. A route that a declared extraction
takes over (infra/extractions.py) already names that service at weight 0, so a ramp or a
shadow run needs no new route."""

from __future__ import annotations

from typing import Any

from infra.extractions import EXTRACTIONS, Extraction
from infra.processes import READ_MODEL

# The monolith's public prefixes; a declared extraction adds the routes it names.
PREFIXES: dict[str, str] = {
    "members": "/api/members",
    "products": "/api/products",
    "orders": "/api/orders",
    "payments": "/api/payments",
    "shipments": "/api/shipments",
    "views": "/api/views",
}


# Routes a process other than an extracted service takes over (the read model, stage 9).
TAKEN_BY = {"views": READ_MODEL}


def default_table(extractions: tuple[Extraction, ...] = EXTRACTIONS) -> dict[str, Any]:
    taken_by = TAKEN_BY | {route: e.service.name for e in extractions for route in e.routes}
    prefixes = PREFIXES | {name: p for e in extractions for name, p in e.routes.items()}
    routes = []
    for name, prefix in prefixes.items():
        weights = {"monolith": 100} | ({taken_by[name]: 0} if name in taken_by else {})
        routes.append({"name": name, "prefix": prefix, "weights": weights})
    return {"routes": routes}
