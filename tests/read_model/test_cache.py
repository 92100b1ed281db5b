"""The Redis cache in front of the views (read_model/cache.py), on a real Redis: the version
guard closes the delete-then-late-write race, and Redis being away never fails a read."""

from __future__ import annotations

import uuid

from prometheus_client import CollectorRegistry

from read_model import views
from read_model.cache import ViewCache
from read_model.metrics import read_model_metrics
from read_model.service_layer import Projector
from read_model.store import View
from read_model.store.factory import make_store
from tests.read_model.conftest import member_event


def cache_at(url: str) -> ViewCache:
    return ViewCache(url, ttl_seconds=30, namespace=f"test-{uuid.uuid4().hex[:8]}")


async def test_a_fill_older_than_an_invalidation_is_refused(redis_url: str):
    cache = cache_at(redis_url)
    entry = cache.key("g1", "my_page", "7")
    try:
        assert await cache.fill(entry, 5, '{"v": 5}')
        assert await cache.get(entry) == (5, '{"v": 5}')
        await cache.invalidate(entry, 6)
        assert await cache.get(entry) is None  # a tombstone reads as a miss
        assert not await cache.fill(entry, 5, '{"v": 5}')  # the late fill of the old version
        assert await cache.get(entry) is None
        assert await cache.fill(entry, 6, '{"v": 6}')
        assert await cache.get(entry) == (6, '{"v": 6}')
        assert not await cache.fill(entry, 4, '{"v": 4}')
        ttl = await cache.redis.pttl(entry)
        assert 0 < ttl <= 30_000
    finally:
        await cache.redis.delete(entry)
        await cache.close()


async def test_the_race_a_plain_delete_loses_is_won(redis_url: str, tmp_path):
    """A reader misses and reads version 1 from the store; an event writes version 2 and
    invalidates; the reader's fill of version 1 comes last. Readers still see version 2."""
    store = make_store(f"sqlite:///{tmp_path / 'views.db'}", "g1")
    await store.start()
    cache = cache_at(redis_url)
    projector = Projector(store, "g1", read_model_metrics(CollectorRegistry()), cache)
    try:
        await projector.apply(member_event(7, 1, 0))
        stale = await store.get(views.MY_PAGE, "7")  # the slow reader's store read
        assert stale is not None and stale.data["points"] == 0
        await projector.apply(member_event(7, 2, 500))  # the event: store v2, tombstone v2
        entry = cache.key("g1", views.MY_PAGE, "7")
        assert not await cache.fill(entry, stale.version, '{"data": {}, "updated_at": 0}')
        served = await projector.read(views.MY_PAGE, "7")  # miss: from the store, filled
        assert served is not None and served.data["points"] == 500
        again = await projector.read(views.MY_PAGE, "7")  # hit
        assert again is not None and again.data == served.data and again.version == 2
    finally:
        await cache.close()
        await store.close()


async def test_redis_away_serves_from_the_store(tmp_path):
    store = make_store(f"sqlite:///{tmp_path / 'views.db'}", "g1")
    await store.start()
    registry = CollectorRegistry()
    cache = ViewCache("redis://127.0.0.1:9/0", ttl_seconds=30, namespace="away",
                      timeout_seconds=0.2)  # fmt: skip
    projector = Projector(store, "g1", read_model_metrics(registry), cache)
    try:
        await projector.apply(member_event(7, 1, 0))
        served = await projector.read(views.MY_PAGE, "7")
        assert isinstance(served, View) and served.data["member"]["id"] == 7
        errors = registry.get_sample_value(
            "shop_read_model_cache_reads_total", {"outcome": "error"}
        )
        assert errors == 1
    finally:
        await cache.close()
        await store.close()
