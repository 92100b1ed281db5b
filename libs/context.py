"""Per-request context shared by logging, outbound clients and envelopes (contextvars, so
it follows the request across awaits and into the thread pool)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from libs.timeouts.commit_guard import CommitGuard

request_id: ContextVar[str] = ContextVar("request_id", default="")
# Absolute monotonic time by which the current request must be answered, or None.
deadline: ContextVar[float | None] = ContextVar("deadline", default=None)
# The current request's commit guard (libs/timeouts/commit_guard.py), or None outside a
# request: a mutable object, so the worker thread that runs a sync handler shares it.
commit_guard: ContextVar[CommitGuard | None] = ContextVar("commit_guard", default=None)
