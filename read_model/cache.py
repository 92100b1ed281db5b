"""Cache-aside in front of the view store, on Redis (SHOP_REDIS_URL), with a version guard.

A read asks Redis first; on a miss it reads the store and fills the cache, with a TTL. The
event that changes a view invalidates its entry. Done naively, that has a hole: a reader
misses and reads version 5 from the store; an event writes version 6 and deletes the entry; the
reader then fills the cache with version 5, and readers see it until the TTL ends.

So every entry carries the view's version (`<version>:<json>`), an invalidation leaves a
tombstone of the version it invalidates (`<version>:`) instead of deleting, and a fill is one
Lua script that writes only if no newer version (entry or tombstone) is there: the late fill
of version 5 finds tombstone 6 and is refused. A tombstone is a miss for readers; the next
fill, of version 6 or later, replaces it.

Redis being away never fails a read: the read goes to the store (counted as `error`)."""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS[1]: the entry; ARGV: version, payload ("" for a tombstone), ttl in ms.
_GUARDED_SET = """
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^(%d+):'))
  if version and version > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1
"""


class ViewCache:
    def __init__(
        self, url: str, *, ttl_seconds: float, namespace: str, timeout_seconds: float = 0.5
    ) -> None:
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.namespace = namespace
        self.redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        self._set = self.redis.register_script(_GUARDED_SET)

    def key(self, generation: str, kind: str, key: str) -> str:
        # The generation (its name and unique id) is part of the key: after a rebuild's swap
        # nothing of the old generation's entries is read again (they expire), and nothing of
        # another deployment's that shares the Redis.
        return f"{self.namespace}:{generation}:{kind}:{key}"

    async def get(self, entry: str) -> tuple[int, str] | None:
        """(version, payload) of a live entry; None for a miss or a tombstone. RedisError
        when Redis is away (the caller reads the store)."""
        raw: Any = await self.redis.get(entry)
        if raw is None:
            return None
        version, _, payload = bytes(raw).decode().partition(":")
        if not payload:
            return None
        return int(version), payload

    async def fill(self, entry: str, version: int, payload: str) -> bool:
        """Caches `payload` at `version` unless a newer version or tombstone is there."""
        return bool(await self._set(keys=[entry], args=[version, payload, self.ttl_ms]))

    async def invalidate(self, entry: str, version: int) -> None:
        """Leaves a tombstone of `version`: older fills are refused, readers miss. Logged,
        not raised, when Redis is away: the TTL bounds how long an entry can be stale."""
        try:
            await self._set(keys=[entry], args=[version, "", self.ttl_ms])
        except RedisError as exc:
            log.warning("read model cache: invalidation of %s failed: %s", entry, exc)

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self.redis.aclose()
