"""The commit guard: a 504 TIMEOUT is only ever sent for a request that committed nothing.

A sync handler runs in a worker thread, and a thread cannot be stopped: when the server's
time limit fires, the handler goes on and may still commit. So the time limit and the
handler's commit race for one per-request guard (in a contextvar, which the worker thread
shares), under a lock, and the first to claim it wins:

- the time limit claims "timed out": the 504 goes out, and every later commit of the request
  raises CommitRefused before it reaches the DB, so its transaction rolls back;
- a commit claims "committing" first: the write counts, and the time limit waits for the
  handler and relays its real answer (a commit is short) instead of a 504.

The commit hook sits on every SQLAlchemy engine (installed once, for the Engine class): the
`commit` event, which runs right before the DBAPI commit, of a transaction that wrote. Dual
write follows: on SQLite one COMMIT covers both ATTACHed files; on PostgreSQL the two-phase
commit's decision row is such a commit, so a refused decision rolls both prepared halves
back. An outbox event is written in its effect's transaction and shares its fate.

Transactions that only read (SELECT, PRAGMA, ...) claim nothing: a slow read still times out.
Outside a request (relays, consumers, jobs) there is no guard and commits go through."""

from __future__ import annotations

import threading
from enum import Enum

import sqlalchemy as sa

from libs import context

_WROTE = "shop_commit_guard_wrote"
# First words of statements that change nothing; anything else counts as a write.
_READS = frozenset({"SELECT", "PRAGMA", "SHOW", "BEGIN", "SAVEPOINT", "RELEASE", "EXPLAIN"})


class CommitRefused(RuntimeError):
    """The request timed out (its 504 is sent or about to be): this commit must not happen."""


class _State(Enum):
    OPEN = "open"
    COMMITTING = "committing"
    TIMED_OUT = "timed out"


class CommitGuard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = _State.OPEN

    def claim_commit(self) -> bool:
        """Before a commit: False when the request already timed out."""
        with self._lock:
            if self._state is _State.TIMED_OUT:
                return False
            self._state = _State.COMMITTING
            return True

    def claim_timeout(self) -> bool:
        """When the time limit fires: False when a commit claimed the request first."""
        with self._lock:
            if self._state is _State.COMMITTING:
                return False
            self._state = _State.TIMED_OUT
            return True

    @property
    def timed_out(self) -> bool:
        return self._state is _State.TIMED_OUT


def _writes(statement: str) -> bool:
    words = statement.lstrip(" \t\r\n(").split(None, 1)
    return bool(words) and words[0].upper() not in _READS


def _on_execute(conn, _cursor, statement, _parameters, _context, _executemany) -> None:
    if context.commit_guard.get() is not None and _writes(statement):
        conn.info[_WROTE] = True


def _on_commit(conn: sa.Connection) -> None:
    wrote = conn.info.pop(_WROTE, False)
    guard = context.commit_guard.get()
    if guard is not None and wrote and not guard.claim_commit():
        # SQLAlchemy gives the transaction up when its commit raises, but the DB's stays
        # open on the pooled connection: end it here, or the next user finds it begun.
        conn.connection.rollback()
        raise CommitRefused("the request timed out before this commit; it is rolled back")


def _on_end(conn: sa.Connection) -> None:
    conn.info.pop(_WROTE, None)


def install_commit_guard() -> None:
    """Hook every engine of the process, present and future (idempotent)."""
    if sa.event.contains(sa.Engine, "commit", _on_commit):
        return
    sa.event.listen(sa.Engine, "before_cursor_execute", _on_execute)
    sa.event.listen(sa.Engine, "commit", _on_commit)
    sa.event.listen(sa.Engine, "rollback", _on_end)
    sa.event.listen(sa.Engine, "begin", _on_end)
