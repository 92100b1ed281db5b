"""A value that work in flight holds, changed only between pieces of work.

    switch = Switch("local")
    with switch.holding() as value:   # many at once; a change waits for them to finish
        ...
    switch.switch_to("remote")        # holds new work back while the hooks run

The data mode of a migration (libs/dualwrite/modes.py) and the monolith's feature switches are
both one: a write must never start under one setting and commit under the next."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Switch(Generic[T]):
    """Thread-safe. Hooks run as `hook(old, new)` with all work held; one raising cancels the
    change and nothing moves."""

    def __init__(self, value: T) -> None:
        self._value = value
        self._hooks: list[Callable[[T, T], None]] = []
        self._cond = threading.Condition()
        self._active = 0
        self._switching = False

    @property
    def value(self) -> T:
        return self._value

    def add_hook(self, hook: Callable[[T, T], None]) -> None:
        self._hooks.append(hook)

    @contextmanager
    def holding(self) -> Iterator[T]:
        with self._cond:
            # A waiting change goes first, so a steady stream of work cannot starve it.
            self._cond.wait_for(lambda: not self._switching)
            self._active += 1
            value = self._value
        try:
            yield value
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def switch_to(self, target: T) -> None:
        with self._cond:
            self._cond.wait_for(lambda: not self._switching)
            self._switching = True
            self._cond.wait_for(lambda: self._active == 0)
        try:
            self.check(self._value, target)
            for hook in self._hooks:
                hook(self._value, target)
            self._value = target
        finally:
            with self._cond:
                self._switching = False
                self._cond.notify_all()

    def check(self, current: T, target: T) -> None:
        """Raise ValueError to refuse a move; every move is allowed here."""
