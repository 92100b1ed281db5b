"""Where a payment's points go.

Local (the `member_points` feature is `local`): the legacy member tables, in the payment's own
transaction. The member row is locked before its balance is read, so two payments of one
member queue and the second sees what the first spent.

Member service (`member-service`, from stage 3): the owner decides. Each debit is a saga step
of its own, the member service's callers' saga (services/member/debits.py), with the attempts
kept in the legacy DB's `point_spends`; credits travel as the payment's events.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from libs.errors import NotFound
from monolith.adapters.tables import members, point_spends
from monolith.service_layer.idempotency import Outcome
from monolith.service_layer.members import change_points
from monolith.service_layer.unit_of_work import UnitOfWork
from services.member.client import BlockingMemberClient
from services.member.debits import (
    EARN,
    REFUND,
    SPEND,
    TAKE_BACK,
    Apply,
    Build,
    Check,
    Checked,
    Debit,
    DebitAsk,
    MemberDebits,
    call_deadline,
)
from services.payment.domain import payments as rules

__all__ = [
    "EARN",
    "REFUND",
    "SPEND",
    "TAKE_BACK",
    "Checked",
    "Debit",
    "DebitAsk",
    "LocalPoints",
    "MemberServicePoints",
    "Points",
    "call_deadline",
]


class Points(Protocol):
    """Where a payment's points go, and so how its transaction runs: `run` calls `check`
    and then `apply` (which calls `settle`) in the transaction(s) the owner of points needs.
    `changes` maps a reason to points (negative for a debit); `debit` is the debit the member
    service already made for it."""

    def run(self, uow: UnitOfWork, check: Check, apply: Apply) -> Outcome: ...

    def settle(
        self,
        conn: sa.Connection,
        member_id: int,
        payment_id: int,
        changes: dict[str, int],
        debit: Debit | None,
    ) -> None: ...


class LocalPoints:
    """The legacy member tables, in the caller's transaction."""

    def run(self, uow: UnitOfWork, check: Check, apply: Apply) -> Outcome:
        """One transaction: the debits are checked and made inside it, by `settle`."""
        with uow:
            checked = check(uow.conn)
            if checked.earlier:
                return checked.earlier
            outcome = apply(uow.conn, checked.row, None)
            uow.commit()
        return outcome

    def settle(
        self,
        conn: sa.Connection,
        member_id: int,
        payment_id: int,
        changes: dict[str, int],
        debit: Debit | None,
    ) -> None:
        """The debits are checked against the locked balance first."""
        taken = -sum(delta for delta in changes.values() if delta < 0)
        if taken:
            balance = conn.scalar(
                sa.select(members.c.points).where(members.c.id == member_id).with_for_update()
            )
            if balance is None:
                raise NotFound("MEMBER_NOT_FOUND", f"Member {member_id} does not exist.")
            if changes.get(TAKE_BACK):
                rules.ensure_can_take_back(balance, taken)
            else:
                rules.ensure_can_spend(balance, taken)
        for reason, delta in changes.items():
            if delta:
                change_points(conn, member_id, delta, reason, payment_id)


class LegacySpendLog:
    """`point_spends` in the legacy DB."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def write(self, tx: sa.Connection, build: Build) -> sa.CursorResult:
        return tx.execute(build(point_spends))

    def write_alone(self, build: Build) -> sa.CursorResult:
        with self.engine.begin() as conn:
            return conn.execute(build(point_spends))

    def read(self, build: Build) -> Sequence[sa.Row]:
        with self.engine.connect() as conn:
            return conn.execute(build(point_spends)).all()


class MemberServicePoints:
    """The member service decides every debit; credits follow from the payment's events."""

    def __init__(
        self, engine: sa.Engine, client: BlockingMemberClient, registry: CollectorRegistry
    ) -> None:
        self.engine, self.client = engine, client
        self.debits = MemberDebits(LegacySpendLog(engine), client, registry)

    def run(self, uow: UnitOfWork, check: Check, apply: Apply) -> Outcome:
        return self.debits.run(lambda: _committing(uow), check, apply)

    def settle(
        self,
        conn: sa.Connection,
        member_id: int,
        payment_id: int,
        changes: dict[str, int],
        debit: Debit | None,
    ) -> None:
        """The debit (already taken) becomes used; the credits are the events' job."""
        self.debits.use(conn, debit, payment_id)

    def intend(
        self,
        conn: sa.Connection,
        member_id: int,
        amount: int,
        reason: str,
        order_id: int,
        payment_id: int | None = None,
    ) -> Debit:
        """The saga's first step alone (services/member/debits.py)."""
        return self.debits.intend(conn, DebitAsk(member_id, amount, reason, order_id, payment_id))

    def debit(self, debit: Debit) -> None:
        self.debits.debit(debit)

    def recover(self, stale_after: float) -> int:
        return self.debits.recover(stale_after)

    def unsettled(self) -> int:
        return self.debits.unsettled()

    def state(self) -> dict:
        return self.debits.state()


@contextmanager
def _committing(uow: UnitOfWork) -> Iterator[sa.Connection]:
    with uow:
        yield uow.conn
        uow.commit()
