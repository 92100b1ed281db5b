"""The caller's side of a points debit at the member service, for whoever takes payments (the
monolith, then the payment service). What the member service decides cannot be undone by the
caller's rollback, so each debit is a saga step of its own:

    pending ──SpendPoints──> (the payment's transaction) ──> used
       │  refused: nothing was taken ──────────────────────> refused
       └─ the payment failed, the call's answer was lost, or the process died ─> cancelling
                                                         ──CancelSpend──> cancelled

- a debit (a points payment's spend; the take-back of the points a refunded card payment
  earned) is a call made *before* the payment's transaction, under a key minted for this
  attempt and committed to `point_spends` first. The key is not the payment's id: the payment
  does not exist yet, and SQLite hands a rolled-back id out again;
- the payment's transaction marks the debit used, only if it is still pending;
- a payment that fails after its debit gives it back (CancelSpend, idempotent on the key, and
  safe even before the spend arrived); what a dead process left pending is found by `recover`
  once it is older than any request can take, and given back the same way;
- credits (the points a card payment earns, a refunded points payment's points) are not
  calls: they travel as the payment's events and the member service applies them.

Where `point_spends` lives is the caller's business (`SpendLog`): the monolith's legacy DB, or
the payment service's data door, which moves the table with the payments."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import grpc
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge

from libs.errors import Conflict, DomainError, Invalid, NotFound, Unavailable
from libs.timeouts import remaining_seconds
from services.member.client import BlockingMemberClient

log = logging.getLogger(__name__)

EARN, SPEND, REFUND, TAKE_BACK = "earn", "spend", "refund", "take-back"
PENDING, USED, REFUSED, CANCELLING, CANCELLED = (
    "pending", "used", "refused", "cancelling", "cancelled",
)  # fmt: skip
# The member service said no for good: retrying cannot change its answer.
REFUSALS = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: Conflict,
    grpc.StatusCode.INVALID_ARGUMENT: Invalid,
}


@dataclass(frozen=True)
class DebitAsk:
    """The points a payment or refund must take from the member before it can commit."""

    member_id: int
    amount: int
    reason: str  # SPEND or TAKE_BACK
    order_id: int
    payment_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Debit(DebitAsk):
    """One debit asked of the member service, as `point_spends` holds it: the ask, and the
    key minted for this attempt."""

    key: str


@dataclass(frozen=True)
class Checked:
    """What a command's checks found, under the locks of the transaction they ran in: the
    answer of an earlier identical request (then nothing else happens), the row the change
    starts from, and the debit it needs, if any."""

    earlier: Any  # the caller's answer type, or None
    row: dict[str, Any]
    debit: DebitAsk | None = None


T = TypeVar("T")  # the caller's transaction: a connection, or a data door's write
T_contra = TypeVar("T_contra", contravariant=True)
Build = Callable[[sa.Table], sa.Executable]


class SpendLog(Protocol[T_contra]):
    """Where the caller keeps `point_spends`: statements are builders given the table."""

    def write(self, tx: T_contra, build: Build) -> sa.CursorResult: ...

    def write_alone(self, build: Build) -> sa.CursorResult:
        """In a transaction of its own, committed when it returns."""
        ...

    def read(self, build: Build) -> Sequence[sa.Row]: ...


def call_deadline(configured: float) -> float:
    """The deadline of a call made for the current request: what is left of the request's
    own budget (its server limit, or the shorter X-Shop-Deadline-Ms its caller sent) when
    that is shorter than the call's configured timeout. A call given 2 s by a request with
    300 ms left would go on after the caller has been answered 504."""
    left = remaining_seconds()
    return configured if left is None else max(min(configured, left), 0.001)


@dataclass(frozen=True)
class SpendMetrics:
    debits: Counter
    unsettled: Gauge


Check = Callable[[Any], Checked]
Apply = Callable[[Any, dict[str, Any], "Debit | None"], Any]


class MemberDebits(Generic[T]):
    """The member service decides every debit (a gRPC call keyed by the attempt)."""

    def __init__(
        self, log_: SpendLog[T], client: BlockingMemberClient, registry: CollectorRegistry
    ) -> None:
        self.spends, self.client = log_, client
        self.metrics = SpendMetrics(
            Counter(
                "shop_points_debits",
                "Debits asked of the member service, by outcome: spent, refused, "
                "given_back (the payment then failed, or the answer was lost) and "
                "give_back_failed (to be retried by the recovery).",
                ["outcome"],
                registry=registry,
            ),
            Gauge(
                "shop_points_debits_unsettled",
                "Debits pending or being given back: not yet used by a payment or returned.",
                registry=registry,
            ),
        )
        self.metrics.unsettled.set_function(self.unsettled)

    def run(
        self, transaction: Callable[[], AbstractContextManager[T]], check: Check, apply: Apply
    ) -> Any:
        """`transaction()`: one of the caller's, committed when the block ends normally.

        Without a debit, one transaction. With one: the attempt is committed, the member
        service takes the points, then the checks run again and the change commits in a
        second transaction; if that does not commit, or an identical request committed in
        between, the points go back."""
        with transaction() as tx:
            checked = check(tx)
            if checked.earlier:
                return checked.earlier
            if checked.debit is None:
                return apply(tx, checked.row, None)
            debit = self.intend(tx, checked.debit)
        self.debit(debit)
        try:
            with transaction() as tx:
                checked = check(tx)
                if not checked.earlier:
                    outcome = apply(tx, checked.row, debit)
        except BaseException:
            self.give_back(debit)  # after the rollback: SQLite's write lock is free again
            raise
        if checked.earlier:  # the same request committed meanwhile: its payment stands
            self.give_back(debit)
            return checked.earlier
        return outcome

    def use(self, tx: T, debit: Debit | None, payment_id: int) -> None:
        """In the payment's transaction: its debit (already taken) becomes used, unless the
        recovery found it stale and is giving it back."""
        if debit is None:
            return
        now = _now()  # outside the builder: dual write runs it once per DB
        used = self.spends.write(
            tx,
            lambda t: (
                t.update()
                .where(t.c.key == debit.key, t.c.status == PENDING)
                .values(status=USED, payment_id=payment_id, updated_at=now)
            ),
        )
        if used.rowcount != 1:
            raise Unavailable(
                "POINTS_DEBIT_EXPIRED",
                "The points were taken too long ago and are being given back; pay again.",
            )

    def intend(self, tx: T, ask: DebitAsk) -> Debit:
        """Writes the attempt in the caller's transaction, which must commit before `debit`:
        from then on nothing can lose track of it."""
        debit = Debit(**asdict(ask), key=str(uuid.uuid4()))
        now = _now()
        row = asdict(debit) | {"status": PENDING, "created_at": now, "updated_at": now}
        self.spends.write(tx, lambda t: t.insert().values(**row))
        return debit

    def debit(self, debit: Debit) -> None:
        """Takes the points, or raises the member service's refusal (the attempt is then
        `refused`) or Unavailable when the answer is unknown (the attempt is given back)."""
        try:
            self.client.spend_points(
                debit.member_id,
                debit.amount,
                debit.key,
                debit.reason,
                debit.payment_id,
                timeout=call_deadline(self.client.timeout),
            )
        except grpc.RpcError as exc:
            refusal = REFUSALS.get(exc.code())
            if refusal is None:  # it may have been applied: take no chances, give it back
                self.give_back(debit)
                raise Unavailable(
                    "MEMBER_SERVICE_UNAVAILABLE",
                    f"The member service did not answer the points debit: {exc.code().name}.",
                ) from exc
            self._set(debit.key, REFUSED, error=exc.details())
            self.metrics.debits.labels("refused").inc()
            raise _refusal(refusal, exc.details() or "", debit) from exc
        self.metrics.debits.labels("spent").inc()

    def give_back(self, debit: Debit) -> None:
        """Never raises: a give-back that fails stays `cancelling` for the recovery."""
        try:
            if self._set(debit.key, CANCELLING, only_from=PENDING):
                self._cancel(debit.key, debit.member_id)
        except Exception:
            log.exception("points debit %s: give-back failed, the recovery retries it", debit.key)

    def recover(self, stale_after: float) -> int:
        """Gives back what a dead request left: debits pending for longer than any request
        takes, and give-backs that failed. Returns how many it gave back."""
        now = _now()
        stale, retry = now - timedelta(seconds=stale_after), now - timedelta(seconds=1)
        rows = self.spends.read(
            lambda t: (
                sa.select(t.c.key, t.c.member_id, t.c.status)
                .where(
                    sa.or_(
                        sa.and_(t.c.status == PENDING, t.c.updated_at < stale),
                        sa.and_(t.c.status == CANCELLING, t.c.updated_at < retry),
                    )
                )
                .order_by(t.c.created_at)
                .limit(200)
            )
        )
        given = 0
        for key, member_id, status in rows:
            if status == PENDING and not self._set(key, CANCELLING, only_from=PENDING):
                continue  # its payment used it meanwhile
            try:
                self._cancel(key, member_id)
                given += 1
            except Exception:
                log.exception("points debit %s: give-back failed, retried next round", key)
        return given

    def unsettled(self) -> int:
        rows = self.spends.read(
            lambda t: (
                sa.select(sa.func.count())
                .select_from(t)
                .where(t.c.status.in_((PENDING, CANCELLING)))
            )
        )
        return rows[0][0] if rows else 0

    def state(self) -> dict:
        """For the admin API: counts per status, and the give-backs still failing."""
        counts = self.spends.read(
            lambda t: sa.select(t.c.status, sa.func.count()).group_by(t.c.status)
        )
        failing = self.spends.read(
            lambda t: (
                sa.select(t.c.key, t.c.member_id, t.c.amount, t.c.attempts, t.c.last_error)
                .where(t.c.status == CANCELLING)
                .order_by(t.c.created_at)
                .limit(100)
            )
        )
        return {
            "counts": {status: n for status, n in counts},
            "giving_back": [dict(row._mapping) for row in failing],
        }

    def _cancel(self, key: str, member_id: int) -> None:
        try:
            self.client.cancel_spend(member_id, key)
        except grpc.RpcError as exc:
            self.metrics.debits.labels("give_back_failed").inc()
            self._set(key, CANCELLING, error=f"{exc.code().name}: {exc.details()}")
            raise
        self._set(key, CANCELLED)
        self.metrics.debits.labels("given_back").inc()

    def _set(
        self, key: str, status: str, *, only_from: str | None = None, error: str | None = None
    ) -> bool:
        def build(t: sa.Table) -> sa.Executable:
            values: dict[str, Any] = {"status": status, "updated_at": now}
            values["last_error"] = error and error[:200]
            if error is not None:
                values["attempts"] = t.c.attempts + 1
            update = t.update().where(t.c.key == key).values(**values)
            return update.where(t.c.status == only_from) if only_from is not None else update

        now = _now()
        return self.spends.write_alone(build).rowcount == 1


def _refusal(kind: type[DomainError], details: str, debit: Debit) -> DomainError:
    code, _, message = details.partition(": ")
    if code == "INSUFFICIENT_POINTS" and debit.reason == TAKE_BACK:
        return Conflict(
            "POINTS_ALREADY_SPENT",
            f"The payment earned {debit.amount} points but they were spent, so it cannot be "
            "refunded.",
        )
    return kind(code or "POINTS_REFUSED", message or details)


def _now() -> datetime:
    return datetime.now(UTC)
