"""The view store's contract, one suite over every adapter on its real server: SQLite (a file),
PostgreSQL (a fresh database) and MongoDB (FerretDB in CI, a fresh database per test).

What the read model relies on: a view comes back exactly as written; a write whose expected
version is stale writes nothing; concurrent writers that re-read and retry lose no update;
generations never see each other; and a store whose server is missing fails fast, naming it,
instead of hanging the process that starts it."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace

import pymongo
import pytest
import sqlalchemy as sa

from read_model.store import View, ViewStore, mongo
from read_model.store.factory import make_store
from read_model.store.mongo import MongoUnavailable, MongoViewStore
from read_model.store.sql import SqlViewStore

BACKENDS = ["sqlite", "postgres", pytest.param("mongodb", marks=pytest.mark.mongodb)]

OpenStore = Callable[[str], Awaitable[ViewStore]]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_url(backend: str, request, tmp_path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'views.db'}"
    elif backend == "postgres":
        yield request.getfixturevalue("postgres_url")
    else:
        yield request.getfixturevalue("mongo_url")


@pytest.fixture
async def open_store(store_url: str) -> AsyncIterator[OpenStore]:
    """Opens stores of the test's URL by generation; closes them all afterwards."""
    opened: list[ViewStore] = []

    async def open_(generation: str) -> ViewStore:
        store = make_store(store_url, generation)
        await store.start()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> ViewStore:
    return await open_store("g1")


def a_view(kind: str = "my_page", key: str = "7", version: int = 1, **fields) -> View:
    return View(kind=kind, key=key, version=version, updated_at=1_767_225_600.25, **fields)


def big_data() -> dict:
    """A my-page document of about 240 KB: unicode, nesting, every JSON type."""
    orders = [
        {
            "order_id": i,
            "status": "PAID" if i % 3 else "CANCELLED",
            "total": 12_500 + i,
            "ratio": i / 7,
            "gift": i % 2 == 0,
            "note": None,
            "items": [{"product": f"상품-{i}-{j} ✓ «naïve»", "qty": j} for j in range(3)],
        }
        for i in range(1200)
    ]
    return {"member": {"id": 7, "name": "김민준 🛒", "tags": []}, "orders": orders}


async def test_a_missing_view_is_none(store: ViewStore):
    assert await store.get("my_page", "404") is None


async def test_a_new_view_round_trips_every_field(store: ViewStore):
    data = big_data()
    assert len(json.dumps(data, ensure_ascii=False).encode()) > 200_000
    held = [{"id": "e-9", "type": "OrderPaid", "sequence": 3, "data": {"order_id": 12}}]
    view = a_view(key="회원-7", data=data, applied={"member:7": 4, "order:12": 1}, held=held)

    assert await store.put(view, 0) is True
    assert await store.get("my_page", "회원-7") == view


async def test_a_second_insert_of_a_view_is_refused_and_changes_nothing(store: ViewStore):
    first = a_view(data={"points": 10})
    assert await store.put(first, 0) is True

    assert await store.put(a_view(data={"points": 99}), 0) is False
    assert await store.get("my_page", "7") == first


async def test_a_stale_expected_version_is_refused_and_changes_nothing(store: ViewStore):
    assert await store.put(a_view(data={"points": 10}), 0) is True
    second = a_view(version=2, data={"points": 20}, applied={"member:7": 2})
    assert await store.put(second, 1) is True

    assert await store.put(replace(second, data={"points": 30}), 1) is False
    assert await store.get("my_page", "7") == second
    assert await store.put(a_view(key="8"), 5) is False
    assert await store.get("my_page", "8") is None


async def test_concurrent_writers_that_retry_lose_no_update(store: ViewStore):
    writers, increments = 16, 20
    conflicts = 0

    async def increment() -> None:
        nonlocal conflicts
        for _ in range(increments):
            while True:
                current = await store.get("my_page", "counter")
                if current is None:
                    view, expected = a_view(key="counter", data={"n": 1}), 0
                else:
                    view = replace(
                        current, version=current.version + 1, data={"n": current.data["n"] + 1}
                    )
                    expected = current.version
                if await store.put(view, expected):
                    break
                conflicts += 1

    await asyncio.gather(*(increment() for _ in range(writers)))

    final = await store.get("my_page", "counter")
    assert final is not None
    assert final.data == {"n": writers * increments}
    assert final.version == writers * increments
    assert conflicts > 0  # the writers did race


async def test_generations_are_isolated(open_store: OpenStore):
    live, rebuild = await open_store("live"), await open_store("rebuild_2")
    mine = a_view(data={"from": "live"})
    assert await live.put(mine, 0) is True

    assert await rebuild.get("my_page", "7") is None
    assert await rebuild.count("my_page") == 0
    theirs = a_view(data={"from": "rebuild"})
    assert await rebuild.put(theirs, 0) is True
    assert await live.get("my_page", "7") == mine
    assert await rebuild.get("my_page", "7") == theirs


async def test_drop_removes_only_its_generation(open_store: OpenStore):
    doomed, kept = await open_store("doomed"), await open_store("kept")
    for store in (doomed, kept):
        assert await store.put(a_view(), 0) is True

    await doomed.drop()

    again = await open_store("doomed")
    assert await again.get("my_page", "7") is None
    assert await again.count("my_page") == 0
    assert await again.keys("my_page") == []
    assert await kept.count("my_page") == 1


async def test_keys_and_count_are_per_kind(store: ViewStore):
    for key in ("3", "1", "2"):
        assert await store.put(a_view(key=key), 0) is True
    for key in ("12", "11"):
        assert await store.put(a_view(kind="order", key=key), 0) is True

    assert await store.keys("my_page") == ["1", "2", "3"]
    assert await store.keys("order") == ["11", "12"]
    assert await store.count("my_page") == 3
    assert await store.count("order") == 2
    assert await store.keys("shipment") == []
    assert await store.count("shipment") == 0


async def test_keys_and_count_count_views_not_versions(store: ViewStore):
    view = a_view(key="7")
    assert await store.put(view, 0) is True
    for version in range(2, 6):
        view = replace(view, version=version, data={"points": version})
        assert await store.put(view, version - 1) is True
    assert await store.put(a_view(key="8"), 0) is True

    assert await store.keys("my_page") == ["7", "8"]
    assert await store.count("my_page") == 2
    assert (await store.get("my_page", "7")) == view


# --- MongoDB: a document per version, the insert of a unique _id as the guard --------------


class Interleaved(MongoViewStore):
    """A MongoDB store whose put lets `between` run at one of its steps (read_model/store/
    mongo.py's docstring): after step 1's read ("read"), or before step 3's ("check"). The
    other writers it runs there are ordinary stores on the same server."""

    def __init__(self, url: str, at: str, between: Callable[[], Awaitable[None]]) -> None:
        super().__init__(url, "g1")
        self.at, self.between = at, between

    async def _lineage_of(self, kind: str, key: str, version: int):
        lineage = await super()._lineage_of(kind, key, version)
        if self.at == "read":
            await self.between()
        return lineage

    async def _keep_highest(self, kind: str, key: str, inserted: int):
        if self.at == "check":
            await self.between()
        return await super()._keep_highest(kind, key, inserted)


def documents(url: str, key: str) -> list[dict]:
    """The documents of my_page `key` in generation g1, highest version first."""
    client: pymongo.MongoClient = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        views = client.get_default_database()["views_g1"]
        return list(views.find({"kind": "my_page", "key": key}).sort("version", -1))
    finally:
        client.close()


async def write_on_top(store: ViewStore, times: int) -> None:
    """`times` ordinary read-change-write rounds on my_page 7, each adding one to "n"."""
    for _ in range(times):
        current = await store.get("my_page", "7")
        assert current is not None
        changed = replace(current, version=current.version + 1, data={"n": current.data["n"] + 1})
        assert await store.put(changed, current.version) is True


@pytest.fixture
async def mongo_store(mongo_url: str) -> AsyncIterator[MongoViewStore]:
    store = MongoViewStore(mongo_url, "g1")
    await store.start()
    yield store
    await store.close()


@pytest.mark.mongodb
async def test_a_mongodb_view_written_many_times_is_one_document(mongo_store, mongo_url):
    assert await mongo_store.put(a_view(data={"n": 1}), 0) is True
    await write_on_top(mongo_store, 11)

    docs = documents(mongo_url, "7")
    assert [doc["version"] for doc in docs] == [12]
    assert docs[0]["data"] == {"n": 12}
    assert await mongo_store.count("my_page") == 1


@pytest.mark.mongodb
async def test_a_mongodb_writer_whose_version_was_written_and_deleted_meanwhile_gets_false(
    mongo_store, mongo_url
):
    # It reads version 1, then two writers make versions 2 and 3 (3's deleting 2), so the
    # _id of version 2 is free again when its insert arrives: the insert succeeds, and the
    # write is still refused, its document removed.
    assert await mongo_store.put(a_view(data={"n": 1}), 0) is True
    late = Interleaved(mongo_url, "read", lambda: write_on_top(mongo_store, 2))
    await late.start()
    try:
        stale = a_view(version=2, data={"n": 100})
        assert await late.put(stale, 1) is False
    finally:
        await late.close()

    final = await mongo_store.get("my_page", "7")
    assert final is not None and (final.version, final.data) == (3, {"n": 3})
    assert [doc["version"] for doc in documents(mongo_url, "7")] == [3]


@pytest.mark.mongodb
async def test_a_mongodb_winner_overtaken_before_its_check_still_wins(mongo_store, mongo_url):
    assert await mongo_store.put(a_view(data={"n": 1}), 0) is True
    winner = Interleaved(mongo_url, "check", lambda: write_on_top(mongo_store, 3))
    await winner.start()
    try:
        assert await winner.put(a_view(version=2, data={"n": 2}), 1) is True
    finally:
        await winner.close()

    final = await mongo_store.get("my_page", "7")
    assert final is not None and (final.version, final.data) == (5, {"n": 5})
    assert [doc["version"] for doc in documents(mongo_url, "7")] == [5]


@pytest.mark.mongodb
async def test_a_mongodb_write_its_lineage_forgot_is_of_unknown_outcome(
    mongo_store, mongo_url, monkeypatch
):
    # A lineage keeps the last LINEAGE_MIN writes and any younger than LINEAGE_SECONDS: with
    # no time and 2, a winner overtaken three times can no longer find its write in it.
    monkeypatch.setattr(mongo, "LINEAGE_SECONDS", 0.0)
    monkeypatch.setattr(mongo, "LINEAGE_MIN", 2)
    assert await mongo_store.put(a_view(data={"n": 1}), 0) is True
    forgotten = Interleaved(mongo_url, "check", lambda: write_on_top(mongo_store, 3))
    await forgotten.start()
    try:
        with pytest.raises(mongo.WriteOutcomeUnknown) as caught:
            await forgotten.put(a_view(version=2, data={"n": 2}), 1)
    finally:
        await forgotten.close()

    assert isinstance(caught.value, TimeoutError)
    docs = documents(mongo_url, "7")
    assert [doc["version"] for doc in docs] == [5]
    assert len(docs[0]["lineage"]) == 2 * mongo.ENTRY.size


@pytest.mark.parametrize("generation", ["", "Live", "live-2", "x; DROP TABLE members", "g" * 41])
@pytest.mark.parametrize(
    "url", ["sqlite:///views.db", "mongodb://127.0.0.1:27017/", "mongodb+srv://cluster.example/"]
)
def test_a_generation_that_is_not_a_short_lowercase_name_is_refused(url: str, generation: str):
    with pytest.raises(ValueError, match="generation"):
        make_store(url, generation)


@pytest.mark.parametrize(
    ("url", "store_type"),
    [
        ("sqlite:///views.db", SqlViewStore),
        ("postgresql+psycopg://postgres@127.0.0.1:5432/shop", SqlViewStore),
        ("mongodb://127.0.0.1:27017/", MongoViewStore),
        ("mongodb+srv://cluster.example/views", MongoViewStore),
    ],
)
def test_the_url_picks_the_adapter(url: str, store_type: type):
    assert isinstance(make_store(url, "live"), store_type)


def test_the_mongodb_database_is_the_parameter_then_the_url_path_then_the_default():
    assert MongoViewStore("mongodb://h/", "g").database == "shop_read_model"
    assert MongoViewStore("mongodb://u:p@h1,h2:27018/views?tls=false", "g").database == "views"
    assert MongoViewStore("mongodb://h/views", "g", database="other").database == "other"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


async def _fails_fast(store: ViewStore, error: type[Exception], within: float) -> str:
    started = time.monotonic()
    try:
        with pytest.raises(error) as caught:
            await asyncio.wait_for(store.start(), timeout=within + 10)
    finally:
        await store.close()
    elapsed = time.monotonic() - started
    assert elapsed < within, f"took {elapsed:.1f} s"
    return str(caught.value)


@pytest.mark.parametrize("port_kind", ["closed", "silent"])
async def test_a_mongodb_store_without_a_server_fails_within_its_timeout(port_kind, request):
    port = closed_port() if port_kind == "closed" else request.getfixturevalue("silent_port")
    store = MongoViewStore(
        f"mongodb://127.0.0.1:{port}/", "live", server_selection_timeout=1.0, socket_timeout=1.0
    )

    message = await _fails_fast(store, MongoUnavailable, within=1.0 + 2.0)

    assert f"MongoDB at 127.0.0.1:{port} did not answer within 1 s" in message


async def test_a_postgresql_store_on_a_closed_port_fails_at_once():
    port = closed_port()
    store = SqlViewStore(f"postgresql+psycopg://postgres@127.0.0.1:{port}/shop", "live")

    message = await _fails_fast(store, sa.exc.OperationalError, within=2.0)

    assert str(port) in message
