"""Explicit timeouts on every call, a server-side time limit, and deadline propagation.

The talk's rule: a client's timeout must be longer than the server's own response limit,
otherwise the client gives up while the server still works (and may still commit)."""

from libs.timeouts.budget import CallTimeouts, Edge, TimeoutBudgetError, check_budgets
from libs.timeouts.client import make_blocking_http_client, make_http_client, outbound_headers
from libs.timeouts.deadline import DEADLINE_HEADER, remaining_seconds
from libs.timeouts.server import ServerTimeLimit

__all__ = [
    "DEADLINE_HEADER",
    "CallTimeouts",
    "Edge",
    "ServerTimeLimit",
    "TimeoutBudgetError",
    "check_budgets",
    "make_blocking_http_client",
    "make_http_client",
    "outbound_headers",
    "remaining_seconds",
]
