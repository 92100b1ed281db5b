"""Dual write across two PostgreSQL databases: two-phase commit with a decision log.

1. Both transactions do their writes, then PREPARE TRANSACTION: each DB has made the work
   durable and promised it can commit, while keeping it invisible and its locks held.
2. The decision is written (its own committed row): the single moment the write counts.
3. COMMIT PREPARED on both, then the decision row is deleted.

A crash before step 2 leaves prepared transactions without a decision: recovery rolls them
back. A crash after step 2 leaves a decision: recovery commits whatever is still prepared.
Either way both DBs end with the write or both without it.

PostgreSQL speaks the protocol in plain SQL; the connections run in autocommit so that this
module, not the driver, says when BEGIN, PREPARE TRANSACTION and COMMIT PREPARED happen.
Transaction ids (gids) are unique per server, not per database, so each side gets its own."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import sqlalchemy as sa

from libs.dualwrite.faults import Fault, no_fault

log = logging.getLogger(__name__)

metadata = sa.MetaData()

decisions = sa.Table(
    "dualwrite_decisions",
    metadata,
    sa.Column("txid", sa.String(32), primary_key=True),
    sa.Column("migration", sa.String(40), nullable=False),
    sa.Column("decided_at", sa.Float, nullable=False),
)

_SIDES = ("legacy", "new")


def install_decision_log(conn: sa.Connection) -> None:
    """Create the decision table (idempotent). It lives in the legacy DB by default."""
    metadata.create_all(conn, checkfirst=True)


class PreparedTransactionsDisabled(RuntimeError):
    pass


@dataclass
class RecoveryReport:
    committed: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)


def prepared_transactions_allowed(conn: sa.Connection) -> int:
    """PostgreSQL's max_prepared_transactions: 0 means two-phase commit is off."""
    return int(conn.exec_driver_sql("SHOW max_prepared_transactions").scalar_one())


class TwoPhaseCommit:
    def __init__(
        self,
        migration: str,
        legacy: sa.Engine,
        new: sa.Engine,
        *,
        decision_log: sa.Engine | None = None,
        fault: Fault = no_fault,
    ) -> None:
        self.prefix = f"dw_{migration}_"
        self.migration = migration
        self.engines = {
            "legacy": legacy.execution_options(isolation_level="AUTOCOMMIT"),
            "new": new.execution_options(isolation_level="AUTOCOMMIT"),
        }
        self.decision_log = decision_log if decision_log is not None else legacy
        self.fault = fault
        self._gid = re.compile(rf"^{re.escape(self.prefix)}([0-9a-f]{{32}})_(legacy|new)$")

    def check_enabled(self) -> None:
        with self.engines["new"].connect() as conn:
            allowed = prepared_transactions_allowed(conn)
        if allowed == 0:
            raise PreparedTransactionsDisabled(
                "PostgreSQL has max_prepared_transactions = 0; dual write needs it > 0 "
                "(see docs/dualwrite.md)"
            )

    @contextmanager
    def transaction(self) -> Iterator[tuple[sa.Connection, sa.Connection]]:
        txid = uuid.uuid4().hex
        with self.engines["legacy"].connect() as legacy, self.engines["new"].connect() as new:
            conns = {"legacy": legacy, "new": new}
            for conn in conns.values():
                conn.exec_driver_sql("BEGIN")
            try:
                yield legacy, new
            except BaseException:
                for conn in conns.values():
                    _quietly(conn, "ROLLBACK")
                raise
            self._commit(txid, conns)

    def _commit(self, txid: str, conns: dict[str, sa.Connection]) -> None:
        prepared: list[str] = []
        try:
            for side in _SIDES:
                _prepare(conns[side], self._gid_of(txid, side))
                prepared.append(side)
                self.fault(f"after_prepare_{side}")
            self.fault("after_prepare")
            self._decide(txid)
        except BaseException:
            for side in _SIDES:
                gid = self._gid_of(txid, side)
                _quietly(
                    conns[side], f"ROLLBACK PREPARED '{gid}'" if side in prepared else "ROLLBACK"
                )
            raise
        self.fault("after_decision")
        self._finish(txid, conns)

    def _finish(self, txid: str, conns: dict[str, sa.Connection]) -> None:
        try:
            for side in _SIDES:
                conns[side].exec_driver_sql(f"COMMIT PREPARED '{self._gid_of(txid, side)}'")
                self.fault(f"after_commit_{side}")
        except sa.exc.DBAPIError:
            # The decision is durable, so the write counts; recovery finishes the commit.
            log.warning("commit of %s left to recovery", txid, exc_info=True)
            return
        with self.decision_log.begin() as conn:
            conn.execute(decisions.delete().where(decisions.c.txid == txid))

    def _decide(self, txid: str) -> None:
        with self.decision_log.begin() as conn:
            conn.execute(
                decisions.insert().values(
                    txid=txid, migration=self.migration, decided_at=time.time()
                )
            )

    def _gid_of(self, txid: str, side: str) -> str:
        return f"{self.prefix}{txid}_{side}"

    def recover(self, *, older_than: float = 0.0) -> RecoveryReport:
        """Finish every prepared transaction of this migration by its decision.

        At start-up, before this process writes, older_than=0 is right when no other process
        writes this migration; otherwise pass more than a commit ever takes (say 60 s), so a
        live writer between PREPARE and its decision is not rolled back under it."""
        report = RecoveryReport()
        in_doubt = self._in_doubt(older_than)
        decided = self._decided()
        for side, gid in in_doubt:
            commit = self._txid(gid) in decided
            with self.engines[side].connect() as conn:
                conn.exec_driver_sql(f"{'COMMIT' if commit else 'ROLLBACK'} PREPARED '{gid}'")
            (report.committed if commit else report.rolled_back).append(gid)
        self._forget_finished(decided)
        return report

    def _in_doubt(self, older_than: float) -> list[tuple[str, str]]:
        found = []
        query = sa.text(
            "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() "
            "AND starts_with(gid, :prefix) AND prepared <= now() - make_interval(secs => :age)"
        )
        for side in _SIDES:
            with self.engines[side].connect() as conn:
                for gid in conn.execute(
                    query, {"prefix": self.prefix, "age": older_than}
                ).scalars():
                    if self._gid.match(gid):
                        found.append((side, gid))
        return found

    def _txid(self, gid: str) -> str:
        match = self._gid.match(gid)
        assert match is not None  # _in_doubt keeps only the gids that match
        return match.group(1)

    def _decided(self) -> set[str]:
        with self.decision_log.connect() as conn:
            query = sa.select(decisions.c.txid).where(decisions.c.migration == self.migration)
            return set(conn.execute(query).scalars())

    def _forget_finished(self, decided: set[str]) -> None:
        # Read after `decided`: a decision whose transactions are no longer prepared now was
        # committed on both sides (nothing else follows a decision), so forgetting it is safe.
        still = {self._txid(gid) for _, gid in self._in_doubt(0.0)}
        done = decided - still
        if done:
            with self.decision_log.begin() as conn:
                conn.execute(decisions.delete().where(decisions.c.txid.in_(done)))


def _prepare(conn: sa.Connection, gid: str) -> None:
    # PREPARE on a transaction that already failed does not raise: PostgreSQL answers with a
    # silent ROLLBACK. Checking first keeps a swallowed error from becoming half a commit.
    driver = conn.connection.driver_connection
    assert driver is not None  # an open connection has its psycopg connection
    status = driver.info.transaction_status
    if status.name != "INTRANS":
        raise RuntimeError(f"cannot prepare {gid}: the transaction is {status.name}")
    conn.exec_driver_sql(f"PREPARE TRANSACTION '{gid}'")


def _quietly(conn: sa.Connection, sql: str) -> None:
    # Cleanup after a failure: if this fails too, recovery rolls the prepared part back.
    with suppress(sa.exc.DBAPIError):
        conn.exec_driver_sql(sql)
