"""The read model's store port: where views live, behind one interface.

A view is one document: what `/api/views/...` serves (`data`), plus the bookkeeping that
makes applying events to it correct under redelivery and reordering (`applied`, `held`), and
a `version` bumped on every change. Every write is a version-guarded upsert: `put(view,
expected)` succeeds only if the stored version is still `expected` (0: the view must not
exist yet), so two writers (two replicas, or the live consumer and a rebuild) can never lose
each other's change; the loser re-reads and applies again.

Adapters: `read_model/store/sql.py` (SQLite or PostgreSQL, the document as JSON text) and
`read_model/store/mongo.py` (MongoDB, one document per view, PyMongo's async client).
Each store holds one *generation* of the views (a table or a collection of its own), so a
rebuild fills a fresh generation while the live one keeps serving."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class View:
    """One view document. `kind` is "my_page" (key: the member's id) or "order" (key: the
    order's id). `applied`: per aggregate ("member:7", "order:12", "payment:3"), the highest
    event sequence applied to this view. `held`: events (their envelope as a dict) that
    arrived ahead of a missing earlier one of their aggregate, applied when it arrives.
    `updated_at`: epoch seconds of the last change."""

    kind: str
    key: str
    version: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    held: list[dict[str, Any]] = field(default_factory=list)
    updated_at: float = 0.0


class ViewStore(Protocol):
    """An async store of views of one generation."""

    async def start(self) -> None:
        """Connects and creates the generation's table or collection if it is missing."""

    async def close(self) -> None: ...

    async def get(self, kind: str, key: str) -> View | None: ...

    async def put(self, view: View, expected: int) -> bool:
        """Writes `view` (with its `version` already bumped past `expected`) if the stored
        version is `expected`, or if `expected` is 0 and no such view exists. False when
        another writer got there first: nothing was written."""

    async def keys(self, kind: str) -> list[str]:
        """Every key of this kind (the demo's invariant and the rebuild compare them)."""

    async def count(self, kind: str) -> int: ...

    async def drop(self) -> None:
        """Removes the whole generation (a rebuild that was given up, or a retired one)."""
