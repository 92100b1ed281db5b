"""The view store on MongoDB: one document per view *version*, in a collection per generation.

Collection `views_<generation>` of the URL's database (or `database`, default
`shop_read_model`). Version v of a view is the document `{_id: "<kind>:<key>:<v, 20 digits>",
kind, key, version, data, applied, held, updated_at, lineage}`; the view is its highest
version, and each write deletes the versions below the highest, so one document per view stays.

Why not one document per view, changed by `replace_one({_id, version: expected})`: that guard
is atomic only where the server applies a filtered write atomically. MongoDB does; FerretDB
v1 (the MongoDB-wire server CI tests against) runs it as a query, then a write by `_id`,
outside one transaction (FerretDB issue #3040), so two writers that read the same version both
succeed and one change is lost. The one guard both servers enforce atomically is the unique
`_id`: of several inserts of one `_id`, exactly one succeeds. So here the version guard is an
insert: `put(view, expected)` inserts the document of version expected + 1, and of the writers
that read `expected`, only the first gets that `_id`.

The insert alone is not enough, because the deletes free `_id`s again: a writer that read
version 3 and stalled while others wrote 4 and 5 (5's writer deleting 4) finds `..:4` free, and
its insert succeeds although its change is lost under 5. On FerretDB that is no corner case:
an insert waiting for SQLite's write lock lets dozens of versions pass (several hundred such
inserts in one run of the contract suite's 16 racing writers). So every document also carries
a `lineage`: for each version up to its own, consecutive, the id of the write that made it (a
random 63-bit number) and when; a new version carries on its predecessor's lineage, dropping
entries older than LINEAGE_SECONDS beyond the last LINEAGE_MIN. A writer, after its insert,
looks for its own write's id at its version in the highest version's lineage.

A put, step by step:
1. Read the highest version (its number and lineage). Not `expected`: False. That refuses a
   writer that is behind (expected 3 while 5 is stored) and one that is ahead (expected 5 of
   a missing view), neither of which an `_id` would stop. (`expected` 0: no read.)
2. Insert version expected + 1. DuplicateKeyError: another writer got there first, False.
3. Read every version of the view (number and lineage); delete all but the highest (the one
   below the new version at once, while the read runs: it is below the highest either way).
4. True if the highest version's lineage names this write at this version, else False.

Why that is right, racing writer by racing writer:
- The highest version only grows: a writer deletes only versions below the highest it saw.
  A stale document (inserted into a freed `_id`, so while a higher version existed) is never
  the highest: `get` never returns one, nobody builds on one, and each version of a lineage
  names the one write of that version that became the highest.
- Two writers that read the same version: they insert the same `_id`; one fails at step 2.
- A writer whose expected is stale: refused at step 1; or, if the version moved on after its
  read, its insert collides with the winner's document (step 2); or, if that document was
  deleted meanwhile, step 3 finds a higher version whose lineage names another write at its
  version (step 4), and deletes the stale document.
- A winner overtaken before step 3 (others already wrote on top of it): its id is in the
  highest version's lineage, True.
- Both answers need the lineage to reach back to the writer's version. It does unless the
  put took LINEAGE_SECONDS (each of its requests is bounded by the socket timeout) or the
  writers' clocks are that far apart; then the put raises WriteOutcomeUnknown, a TimeoutError,
  as a write whose reply never came would (the read model applies the event again, which
  changes nothing if it is in). A lineage is LINEAGE_MIN entries (16 bytes each) unless the
  view changes faster than that many times in LINEAGE_SECONDS.
- A reader between an insert and the deletes that follow it sees the new version (the
  highest); a crash there leaves older versions, which reads ignore and the next write
  deletes; `keys` and `count` count distinct keys, not documents.

Cost: a change is a read, an insert, then a read of the view's versions together with the
delete of the version below, where one replace_one was. The index (kind, key, version) makes
each read an index seek on MongoDB. FerretDB v1's SQLite handler pushes down only a filter
that is exactly `{_id: value}` and scans the collection for any other: there `get` scans (it
looked up an `_id` before) and a put scans twice (the replace_one guard scanned once).

Every call has a bound: the client gives up selecting a server after
`server_selection_timeout` and waits at most `socket_timeout` for a reply, and `start()` pings,
so a store pointed at a missing server fails at start-up, in seconds, naming the address."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import CollectionInvalid, ConnectionFailure, DuplicateKeyError

from read_model.store import View
from read_model.store.factory import check_generation

DEFAULT_DATABASE = "shop_read_model"
COLLECTION_PREFIX = "views_"
# How long a write stays in the lineage of the versions above it (by the writers' clocks), and
# how many writes a lineage keeps however old they are.
LINEAGE_SECONDS = 120.0
LINEAGE_MIN = 32
# One lineage entry: a write's id and when it was written (epoch seconds), little-endian.
ENTRY = struct.Struct("<qd")
NEWEST_FIRST = [("version", DESCENDING)]
INDEX = [("kind", ASCENDING), ("key", ASCENDING), ("version", DESCENDING)]


class MongoUnavailable(ConnectionError):
    """The MongoDB server did not answer within the store's timeouts."""


class WriteOutcomeUnknown(TimeoutError):
    """A put inserted its version but cannot tell whether that write won: the highest version's
    lineage no longer reaches back to it (the put took minutes, or a writer's clock is far
    off). Like a reply that never came: the write may be in or not, and the caller applies
    its change again."""


class MongoViewStore:
    """The views of one generation in a MongoDB (or MongoDB-wire, e.g. FerretDB) database."""

    def __init__(
        self,
        url: str,
        generation: str,
        *,
        database: str | None = None,
        server_selection_timeout: float = 3.0,
        socket_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.generation = check_generation(generation)
        self.database = database or _url_database(url) or DEFAULT_DATABASE
        self.collection_name = COLLECTION_PREFIX + generation
        self.server_selection_timeout = server_selection_timeout
        self.socket_timeout = socket_timeout
        self._client: AsyncMongoClient[dict[str, Any]] | None = None

    @property
    def views(self) -> AsyncCollection[dict[str, Any]]:
        if self._client is None:
            raise RuntimeError("MongoViewStore.start() was not called")
        return self._client[self.database][self.collection_name]

    async def start(self) -> None:
        if self._client is None:
            self._client = AsyncMongoClient(
                self.url,
                serverSelectionTimeoutMS=int(self.server_selection_timeout * 1000),
                connectTimeoutMS=int(self.server_selection_timeout * 1000),
                socketTimeoutMS=int(self.socket_timeout * 1000),
                appname="shop-read-model",
            )
        try:
            await self._client.admin.command("ping")
        except ConnectionFailure as exc:
            raise MongoUnavailable(
                f"MongoDB at {self._address()} did not answer within "
                f"{self.server_selection_timeout:g} s: {exc}"
            ) from exc
        await self._create_collection()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def get(self, kind: str, key: str) -> View | None:
        doc = await self.views.find_one(_of(kind, key), {"lineage": 0}, sort=NEWEST_FIRST)
        if doc is None:
            return None
        return View(
            kind=doc["kind"],
            key=doc["key"],
            version=doc["version"],
            data=doc["data"],
            applied=doc["applied"],
            held=doc["held"],
            updated_at=doc["updated_at"],
        )

    async def put(self, view: View, expected: int) -> bool:
        """The steps of the module's docstring. The version a put writes is expected + 1 (the
        writers that read one version must all claim the same `_id`); ValueError otherwise."""
        below = await self._lineage_of(view.kind, view.key, expected)
        if below is None:
            return False
        if view.version != expected + 1:
            raise ValueError(f"a put writes version {expected + 1}, not {view.version}")
        now, write = time.time(), secrets.randbits(63)
        lineage = [*_recent(below, now), (write, now)]
        doc_id = _id(view.kind, view.key, view.version)
        try:
            await self.views.insert_one(
                {"_id": doc_id, **_document(view), "lineage": _packed(lineage)}
            )
        except DuplicateKeyError:
            return False
        highest = await self._keep_highest(view.kind, view.key, view.version)
        won = _descends(highest, view.version, write)
        if won is None:
            raise WriteOutcomeUnknown(
                f"{view.kind} {view.key}: version {view.version} was overtaken by versions "
                "whose lineage no longer names it before its write could be checked"
            )
        return won

    async def keys(self, kind: str) -> list[str]:
        return sorted(await self.views.distinct("key", {"kind": kind}))

    async def count(self, kind: str) -> int:
        return len(await self.views.distinct("key", {"kind": kind}))

    async def drop(self) -> None:
        await self.views.drop()

    async def _lineage_of(
        self, kind: str, key: str, version: int
    ) -> list[tuple[int, float]] | None:
        """Step 1: the lineage of `version` of the view; None if that is not its highest."""
        if version == 0:
            return []
        projection = {"_id": 0, "version": 1, "lineage": 1}
        latest = await self.views.find_one(_of(kind, key), projection, sort=NEWEST_FIRST)
        if latest is None or latest["version"] != version:
            return None
        return _lineage(latest)

    async def _keep_highest(self, kind: str, key: str, inserted: int) -> dict[str, Any] | None:
        """Step 3: the highest version's number and lineage, once every version below the
        highest is deleted (each by its `_id`, which names its version). The one below the
        version just inserted is deleted meanwhile: it is below the highest whatever comes."""
        below = _id(kind, key, inserted - 1)
        projection = {"_id": 1, "version": 1, "lineage": 1}
        cursor = self.views.find(_of(kind, key), projection, sort=NEWEST_FIRST)
        reading = asyncio.ensure_future(cursor.to_list())
        if inserted > 1:
            await self.views.delete_one({"_id": below})
        versions = await reading
        others = [doc["_id"] for doc in versions[1:] if doc["_id"] != below]
        await asyncio.gather(*(self.views.delete_one({"_id": other}) for other in others))
        return versions[0] if versions else None

    async def _create_collection(self) -> None:
        assert self._client is not None
        database = self._client[self.database]
        if self.collection_name not in await database.list_collection_names():
            # CollectionInvalid: another replica created it meanwhile.
            with contextlib.suppress(CollectionInvalid):
                await database.create_collection(self.collection_name)
        await self.views.create_index(INDEX)

    def _address(self) -> str:
        # The URL's hosts without its credentials.
        return urlsplit(self.url).netloc.rpartition("@")[2]


def _url_database(url: str) -> str:
    """The database a MongoDB URL names in its path ("" if none). Read from the text, so a
    mongodb+srv:// URL is not resolved in DNS for it."""
    return unquote(urlsplit(url).path.lstrip("/"))


def _of(kind: str, key: str) -> dict[str, str]:
    return {"kind": kind, "key": key}


def _id(kind: str, key: str, version: int) -> str:
    # The kind is the part before the first colon, so it may hold none ("my_page", "order");
    # the version is the last 20 characters, so a key may hold colons.
    if ":" in kind:
        raise ValueError(f"a view kind has no colon: {kind!r}")
    return f"{kind}:{key}:{version:020d}"


def _lineage(doc: dict[str, Any]) -> list[tuple[int, float]]:
    # A document written before lineages (one per view, `_id` "<kind>:<key>") has none.
    return [(write, at) for write, at in ENTRY.iter_unpack(doc.get("lineage", b""))]


def _packed(lineage: list[tuple[int, float]]) -> bytes:
    return b"".join(ENTRY.pack(write, at) for write, at in lineage)


def _recent(lineage: list[tuple[int, float]], now: float) -> list[tuple[int, float]]:
    """The entries a new version carries on: the last LINEAGE_MIN - 1, and any younger than
    LINEAGE_SECONDS. Only the oldest go, so a lineage stays the writes of consecutive
    versions, the last one the document's own."""
    start = 0
    while len(lineage) - start >= LINEAGE_MIN and lineage[start][1] < now - LINEAGE_SECONDS:
        start += 1
    return lineage[start:]


def _descends(highest: dict[str, Any] | None, version: int, write: int) -> bool | None:
    """Whether the highest version is `write` at `version` or was built on it; None when its
    lineage does not reach back to `version`."""
    if highest is None:
        return None
    lineage = _lineage(highest)
    at = version - (highest["version"] - len(lineage) + 1)
    if not 0 <= at < len(lineage):
        return None
    return lineage[at][0] == write


def _document(view: View) -> dict[str, Any]:
    return {
        "kind": view.kind,
        "key": view.key,
        "version": view.version,
        "data": view.data,
        "applied": view.applied,
        "held": view.held,
        "updated_at": view.updated_at,
    }
