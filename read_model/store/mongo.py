"""The view store on MongoDB: one document per view in a collection per generation.

Collection `views_<generation>` of the URL's database (or `database`, default
`shop_read_model`); each view is `{_id: "<kind>:<key>", kind, key, version, data, applied,
held, updated_at}`. The version guard is the filter of a single-document write, which MongoDB
applies atomically: a new view is an insert_one that the unique `_id` refuses if another
writer inserted first; a change is a replace_one matching `{_id, version: expected}`, which
matches nothing once another writer has moved the version on. The caller re-reads and retries.
That needs a server that makes a filtered write atomic, as MongoDB does. FerretDB v1 (CI's
MongoDB-wire server) does not: it runs replace_one as a query, then a write by `_id`, outside
one transaction (FerretDB issue #3040), so two writers that read the same version both
succeed; against it the store is fine for one writer per view, not for racing ones.

Every call has a bound: the client gives up selecting a server after
`server_selection_timeout` and waits at most `socket_timeout` for a reply, and `start()` pings,
so a store pointed at a missing server fails at start-up, in seconds, naming the address."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import unquote, urlsplit

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import CollectionInvalid, ConnectionFailure, DuplicateKeyError

from read_model.store import View
from read_model.store.factory import check_generation

DEFAULT_DATABASE = "shop_read_model"
COLLECTION_PREFIX = "views_"


class MongoUnavailable(ConnectionError):
    """The MongoDB server did not answer within the store's timeouts."""


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
        doc = await self.views.find_one({"_id": _id(kind, key)})
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
        doc = _document(view)
        if expected == 0:
            try:
                await self.views.insert_one({"_id": _id(view.kind, view.key), **doc})
            except DuplicateKeyError:
                return False
            return True
        guard = {"_id": _id(view.kind, view.key), "version": expected}
        result = await self.views.replace_one(guard, doc)
        return result.matched_count == 1

    async def keys(self, kind: str) -> list[str]:
        cursor = self.views.find({"kind": kind}, {"key": 1, "_id": 0})
        return sorted([doc["key"] async for doc in cursor])

    async def count(self, kind: str) -> int:
        return await self.views.count_documents({"kind": kind})

    async def drop(self) -> None:
        await self.views.drop()

    async def _create_collection(self) -> None:
        assert self._client is not None
        database = self._client[self.database]
        if self.collection_name not in await database.list_collection_names():
            # CollectionInvalid: another replica created it meanwhile.
            with contextlib.suppress(CollectionInvalid):
                await database.create_collection(self.collection_name)
        await self.views.create_index("kind")

    def _address(self) -> str:
        # The URL's hosts without its credentials.
        return urlsplit(self.url).netloc.rpartition("@")[2]


def _url_database(url: str) -> str:
    """The database a MongoDB URL names in its path ("" if none). Read from the text, so a
    mongodb+srv:// URL is not resolved in DNS for it."""
    return unquote(urlsplit(url).path.lstrip("/"))


def _id(kind: str, key: str) -> str:
    # The kind is the part before the first colon, so it may hold none ("my_page", "order").
    if ":" in kind:
        raise ValueError(f"a view kind has no colon: {kind!r}")
    return f"{kind}:{key}"


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
