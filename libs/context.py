"""Per-request context shared by logging, outbound clients and envelopes (contextvars, so
it follows the request across awaits and into the thread pool)."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="")
# Absolute monotonic time by which the current request must be answered, or None.
deadline: ContextVar[float | None] = ContextVar("deadline", default=None)
