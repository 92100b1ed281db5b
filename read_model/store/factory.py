"""Which store a URL names, and what a generation may be called.

One setting (a URL) picks the adapter, so the embedded default (a SQLite file), PostgreSQL and
MongoDB (compose) are the same code path above the port. The adapters are imported on demand:
the SQL default never loads the MongoDB driver.

A generation names a table (`read_views_<generation>`) or a collection (`views_<generation>`),
so it is spliced into identifiers: it must be short, lower-case letters, digits and
underscores, the same rule for both stores so a generation can move between them."""

from __future__ import annotations

import re

from read_model.store import ViewStore

GENERATION = re.compile(r"[a-z0-9_]{1,40}")
MONGO_SCHEMES = ("mongodb://", "mongodb+srv://")


def check_generation(generation: str) -> str:
    """`generation` itself if it is a valid name, else ValueError."""
    if not GENERATION.fullmatch(generation):
        raise ValueError(f"generation {generation!r} must be 1-40 characters of a-z, 0-9 and _")
    return generation


def make_store(url: str, generation: str) -> ViewStore:
    """The store of `generation` at `url`: MongoDB for mongodb:// and mongodb+srv:// URLs,
    otherwise a SQLAlchemy URL (SQLite or PostgreSQL)."""
    if url.startswith(MONGO_SCHEMES):
        from read_model.store.mongo import MongoViewStore

        return MongoViewStore(url, generation)
    from read_model.store.sql import SqlViewStore

    return SqlViewStore(url, generation)
