"""Named fault points for the dual-write demonstration: production code calls
`fault("after_prepare")` at each point where a crash or error matters, tests pass a fault
that raises or kills the process there."""

from __future__ import annotations

import os
from collections.abc import Callable

Fault = Callable[[str], None]


class InjectedFault(RuntimeError):
    pass


def no_fault(point: str) -> None:
    return None


def fail_at(*points: str) -> Fault:
    def fault(point: str) -> None:
        if point in points:
            raise InjectedFault(f"injected failure at {point}")

    return fault


def exit_at(point: str, code: int = 86) -> Fault:
    """Ends the process at once, as a kill -9 would: no finally blocks, no rollback."""

    def fault(current: str) -> None:
        if current == point:
            os._exit(code)

    return fault
