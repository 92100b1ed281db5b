"""The sticky key: who is asking. A member is known by the `sub` of their token, so they land on
the same side on every device; an anonymous caller gets a session cookie instead."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from libs.routing.allocation import SPACE

SESSION_COOKIE = "shop_sid"
SESSION_MAX_AGE = 365 * 24 * 3600


def sticky_point(route: str, key: str) -> int:
    """A point in [0, SPACE), stable for (route, key). Per route, so the members moved first on
    one route are not always the same members moved first on every other route."""
    digest = hashlib.blake2b(f"{route}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % SPACE


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def session_id(cookie_header: str | None) -> str | None:
    if not cookie_header:
        return None
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    return None


def new_session_id() -> str:
    return secrets.token_urlsafe(16)


def session_cookie(sid: str) -> str:
    return f"{SESSION_COOKIE}={sid}; Path=/; Max-Age={SESSION_MAX_AGE}; HttpOnly; SameSite=Lax"


class MemberKeys:
    """Member id from a bearer token, verified with the shop's token secret. Verified tokens are
    cached briefly: the key only steers routing (the backend still authenticates), and HS256
    verification on every proxied request would cost more than the routing itself."""

    def __init__(
        self,
        verify: Callable[[str], int],
        *,
        ttl_seconds: float = 60.0,
        max_entries: int = 50_000,
    ) -> None:
        self.verify = verify
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    def member(self, token: str) -> str | None:
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit and hit[0] > now:
            return hit[1]
        try:
            member: str | None = str(self.verify(token))
        except Exception:
            member = None
        self._cache[token] = (now + self.ttl, member)
        if len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return member


def sticky_key(
    authorization: str | None, cookie_header: str | None, members: MemberKeys
) -> tuple[str, str | None]:
    """(key, new session id or None). A new session id must be set as a cookie by the caller."""
    token = bearer_token(authorization)
    if token and (member := members.member(token)) is not None:
        return f"member:{member}", None
    sid = session_id(cookie_header)
    if sid:
        return f"session:{sid}", None
    sid = new_session_id()
    return f"session:{sid}", sid
