"""The read model's invariant: once the events have settled, every member's my page says
what the owners say: the points balance, and for each of the member's most recent orders its
status and its payment's status. The owners' state is the walk's snapshot (snapshot.py); the
views are read through the read model's admin API, bookkeeping included, so an event still
held in a view (waiting for an earlier one that never came) shows too."""

from __future__ import annotations

import math

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from monolith.adapters.tables import members, orders, payments
from read_model.views import MY_PAGE, RECENT_ORDERS
from services.order.domain.orders import HIDDEN

SHOWN = 5  # problems listed before the rest are only counted
FRESHNESS = "shop_read_model_freshness_seconds"


def views_match_owners(admin: httpx.Client, url: str, conn: sa.Connection) -> list[str]:
    problems: list[str] = []
    paid = dict(conn.execute(sa.select(payments.c.order_id, payments.c.status)).all())
    for member_id, points in conn.execute(sa.select(members.c.id, members.c.points)).all():
        reply = admin.get(f"{url}/admin/read-model/views/{MY_PAGE}/{member_id}")
        if reply.status_code != 200:
            problems.append(f"member {member_id}: no my page ({reply.status_code})")
            continue
        view = reply.json()["data"]
        page = view["data"]
        recent = conn.execute(
            sa.select(orders.c.id, orders.c.status)
            .where(orders.c.member_id == member_id, orders.c.status.not_in(HIDDEN))
            .order_by(orders.c.id.desc())
            .limit(RECENT_ORDERS)
        ).all()
        want = [(order_id, status, paid.get(order_id)) for order_id, status in recent]
        got = [
            (o["id"], o["status"], (o["payment"] or {}).get("status"))
            for o in page.get("orders", [])
        ]
        if page.get("points") != points:
            problems.append(
                f"member {member_id}: page says {page.get('points')} points, owner {points}"
            )
        if got != want:
            problems.append(f"member {member_id}: page orders {got}, owners {want}")
        if view["held"]:
            problems.append(f"member {member_id}: {len(view['held'])} events still held")
    if len(problems) > SHOWN:
        problems = [*problems[:SHOWN], f"... and {len(problems) - SHOWN} more"]
    return problems


def freshness(metrics_text: str) -> tuple[float, int]:
    """(p99 upper bound in seconds, view changes counted) from the read model's freshness
    histogram: the smallest bucket bound that 99% of the observations fall under."""
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(metrics_text):
        if family.name != FRESHNESS:
            continue
        for sample in family.samples:
            if sample.name == f"{FRESHNESS}_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
    if not buckets:
        return math.nan, 0
    buckets.sort()
    total = int(buckets[-1][1])
    bound = next((le for le, count in buckets if count >= 0.99 * total), math.inf)
    return bound, total
