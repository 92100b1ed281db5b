"""Where a payment's points go.

Until the member service owns points (the `member_points` feature is `local`), they move in
the payment's own transaction, on the legacy member tables. Once it owns them
(`member-service`, from stage 3), the payment's transaction writes a row to the points outbox
instead, and `PointsRelay` delivers it to the member service's AdjustPoints after the commit,
retrying until it lands. The call is idempotent on (payment_id, reason), so a delivery repeated
after a lost answer changes nothing: the payment is never lost with a failed call, and its
points are never moved twice."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Protocol

import grpc
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge

from libs.errors import NotFound, Unavailable
from monolith.adapters.tables import member_points_outbox as outbox
from monolith.adapters.tables import members
from monolith.service_layer.members import change_points
from services.member.client import BlockingMemberClient

log = logging.getLogger(__name__)

# The member service said no for good: retrying cannot change its answer.
REFUSED = {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.INVALID_ARGUMENT,
}


class Points(Protocol):
    def balance(self, conn: sa.Connection, member_id: int) -> int: ...

    def change(
        self, conn: sa.Connection, member_id: int, delta: int, reason: str, payment_id: int
    ) -> None: ...


class LocalPoints:
    """The legacy member tables, in the caller's transaction."""

    def balance(self, conn: sa.Connection, member_id: int) -> int:
        return conn.scalar(sa.select(members.c.points).where(members.c.id == member_id)) or 0

    def change(
        self, conn: sa.Connection, member_id: int, delta: int, reason: str, payment_id: int
    ) -> None:
        change_points(conn, member_id, delta, reason, payment_id)


class MemberServicePoints:
    """The member service: the balance asked over gRPC, the change queued in the outbox."""

    def __init__(self, client: BlockingMemberClient) -> None:
        self.client = client

    def balance(self, conn: sa.Connection, member_id: int) -> int:
        try:
            return self.client.get_member(member_id).points
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                raise NotFound("MEMBER_NOT_FOUND", f"Member {member_id} does not exist.") from exc
            raise Unavailable(
                "MEMBER_SERVICE_UNAVAILABLE",
                f"The member service did not answer the points balance: {exc.code().name}.",
            ) from exc

    def change(
        self, conn: sa.Connection, member_id: int, delta: int, reason: str, payment_id: int
    ) -> None:
        conn.execute(
            outbox.insert().values(
                member_id=member_id,
                delta=delta,
                reason=reason,
                payment_id=payment_id,
                created_at=datetime.now(UTC),
            )
        )


class PointsRelay:
    """Delivers the outbox in order. Safe to call from many threads at once: deliveries are
    serialised, and a row is marked delivered only after the member service answered."""

    def __init__(
        self, engine: sa.Engine, client: BlockingMemberClient, registry: CollectorRegistry
    ) -> None:
        self.engine, self.client = engine, client
        self._lock = threading.Lock()
        self.delivered = Counter(
            "shop_member_points_delivered_total",
            "Points changes the member service applied (or had applied already).",
            registry=registry,
        )
        self.failures = Counter(
            "shop_member_points_delivery_failures_total",
            "Delivery attempts that failed, by outcome (retry: will be retried; refused: parked).",
            ["outcome"],
            registry=registry,
        )
        self.pending_gauge = Gauge(
            "shop_member_points_pending",
            "Points changes written by payments and not yet delivered to the member service.",
            registry=registry,
        )
        self.pending_gauge.set_function(self.pending)

    def pending(self) -> int:
        with self.engine.connect() as conn:
            return (
                conn.scalar(sa.select(sa.func.count()).select_from(outbox).where(_deliverable()))
                or 0
            )

    def parked(self) -> list[dict]:
        """Changes the member service refused; they wait for a person, not a retry."""
        with self.engine.connect() as conn:
            query = sa.select(outbox).where(outbox.c.last_error.like("refused%"))
            return [dict(r) for r in conn.execute(query).mappings()]

    def flush(self, limit: int = 200) -> int:
        """Delivers what is pending, oldest first; stops at the first failure to retry, so
        a member's changes arrive in the order their payments committed."""
        delivered = 0
        with self._lock:
            with self.engine.connect() as conn:
                query = sa.select(outbox).where(_deliverable()).order_by(outbox.c.id).limit(limit)
                rows = conn.execute(query).mappings().all()
            for row in rows:
                try:
                    self.client.adjust_points(
                        row["member_id"], row["delta"], row["reason"], row["payment_id"]
                    )
                except grpc.RpcError as exc:
                    refused = exc.code() in REFUSED
                    self.failures.labels("refused" if refused else "retry").inc()
                    self._mark(row["id"], error=f"{'refused' if refused else 'retry'}: {exc}")
                    if refused:
                        log.error("points change %s refused: %s", dict(row), exc.details())
                        continue
                    return delivered
                self._mark(row["id"])
                self.delivered.inc()
                delivered += 1
        return delivered

    def _mark(self, row_id: int, error: str | None = None) -> None:
        values = {"attempts": outbox.c.attempts + 1, "last_error": error and error[:200]}
        if error is None:
            values["delivered_at"] = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(outbox.update().where(outbox.c.id == row_id).values(**values))


def _deliverable() -> sa.ColumnElement[bool]:
    return sa.and_(
        outbox.c.delivered_at.is_(None),
        sa.or_(outbox.c.last_error.is_(None), outbox.c.last_error.not_like("refused%")),
    )
