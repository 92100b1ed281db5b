"""One set of metric objects per Prometheus registry. prometheus_client refuses to register a
name twice, yet a process may run several sync jobs, relays or consumer groups (told apart by
a label) and a test process many apps: each asks for its set, and the first asker builds it."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry

T = TypeVar("T")


def per_registry(build: Callable[[CollectorRegistry], T]) -> Callable[[CollectorRegistry], T]:
    built: weakref.WeakKeyDictionary[CollectorRegistry, T] = weakref.WeakKeyDictionary()
    lock = threading.Lock()

    def get(registry: CollectorRegistry) -> T:
        with lock:
            if registry not in built:
                built[registry] = build(registry)
            return built[registry]

    return get
