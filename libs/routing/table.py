"""The route table: path prefix (and optionally methods) -> backends with integer weights.

Plain data and validation only, no web framework, so the gateway and the monolith's own
forwarding share one definition of a route and one answer to "where does this request go"."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from libs.routing.allocation import Allocation
from libs.routing.sticky import sticky_point

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Safe to send twice when the first attempt never reached the backend.
IDEMPOTENT_METHODS = SAFE_METHODS | {"PUT", "DELETE"}
MAX_WEIGHT = 1_000_000
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_PREFIX = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# What a path segment may hold as it is (RFC 3986 pchar), and the separator.
_PATH_CHARS = _UNRESERVED | frozenset(b"!$&'()*+,;=:@/")
_HEX = frozenset(b"0123456789abcdefABCDEF")
# Bytes a backend could read as a separator or a terminator, raw or percent-encoded.
_REFUSED = frozenset({0x2F, 0x5C, 0x7F, *range(0x20)})


class AmbiguousPath(ValueError):
    """A path the gateway and a backend could read differently: refused, never routed."""


def normalise_path(raw: bytes) -> str:
    """The one form of a request path that routes are matched on and backends are sent.

    Percent-encoded unreserved characters are decoded (`%2e` is `.`, `%7E` is `~`), other
    escapes are kept with upper-case hex and other odd bytes are encoded, then dot segments are
    removed (RFC 3986 5.2.4), so `/api/products/%2e%2e/orders` is `/api/orders`. Refused, as
    ambiguous: an encoded `/` (`%2F`) or any `\\` (raw or `%5C`), which a backend may take for
    a separator; a doubled `/`, which some servers merge; NUL and control characters; a bad
    escape. What comes back is ASCII and decodes to the path the backend's router sees."""
    if not raw.startswith(b"/"):
        raise AmbiguousPath("the path must start with '/'")
    encoded = _canonical_escapes(raw)
    segments = encoded.split("/")[1:]
    if "" in segments[:-1]:
        raise AmbiguousPath("the path has an empty segment ('//')")
    return "/" + "/".join(_remove_dot_segments(segments))


def _canonical_escapes(raw: bytes) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte == 0x25:  # '%'
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or not all(c in _HEX for c in pair):
                raise AmbiguousPath("the path has a malformed percent-escape")
            byte = int(pair, 16)
            i += 3
            if byte in _REFUSED:
                raise AmbiguousPath(f"the path encodes the character %{byte:02X}")
            out.append(chr(byte) if byte in _UNRESERVED else f"%{byte:02X}")
            continue
        if byte in _REFUSED and byte != 0x2F:
            raise AmbiguousPath(f"the path holds the character %{byte:02X}")
        out.append(chr(byte) if byte in _PATH_CHARS else f"%{byte:02X}")
        i += 1
    return "".join(out)


def _remove_dot_segments(segments: list[str]) -> list[str]:
    """RFC 3986 5.2.4 on a split absolute path: '.' goes, '..' takes its parent with it (never
    above the root); a path ending in either ends with '/'."""
    out: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and out:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(segment)
    return out


class InvalidRouteTable(ValueError):
    """The proposed table is refused; `details` names every problem, nothing is applied."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{d['field']}: {d['message']}" for d in details))
        self.details = details


@dataclass(frozen=True)
class RouteTimeouts:
    connect: float
    read: float


@dataclass(frozen=True)
class ShadowRule:
    """Mirror `percent` of safe requests to `backend` and compare, ignoring volatile fields."""

    backend: str
    percent: float
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    name: str
    prefix: str
    weights: tuple[tuple[str, int], ...]
    methods: frozenset[str] | None = None
    timeouts: RouteTimeouts | None = None
    shadow: ShadowRule | None = None
    allocation: Allocation = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.allocation is None or not self.allocation.matches(self.weights):
            object.__setattr__(self, "allocation", Allocation.canonical(self.weights))

    def matches(self, path: str, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return (
            self.prefix == "/"
            or path == self.prefix
            or (path.startswith(self.prefix) and path[len(self.prefix)] == "/")
        )

    def choose(self, key: str) -> str:
        """The backend for this sticky key: stable while the weights stay put."""
        return self.allocation.owner(sticky_point(self.name, key))

    def share(self) -> dict[str, float]:
        total = sum(w for _, w in self.weights)
        return {name: round(100 * w / total, 2) for name, w in self.weights}

    def with_weights(self, weights: Sequence[tuple[str, int]]) -> Route:
        weights = tuple(weights)
        return replace(self, weights=weights, allocation=self.allocation.rebalance(weights))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "prefix": self.prefix,
            "methods": sorted(self.methods) if self.methods is not None else None,
            "weights": dict(self.weights),
            "timeouts": vars(self.timeouts) if self.timeouts else None,
            "shadow": (
                {
                    "backend": self.shadow.backend,
                    "percent": self.shadow.percent,
                    "ignore": list(self.shadow.ignore),
                }
                if self.shadow
                else None
            ),
        }


class RouteTable:
    """An immutable set of routes. Lookup is longest prefix first; a route naming methods wins
    over a route with the same prefix for all methods."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        self._by_name = {r.name: r for r in self.routes}
        self._lookup = sorted(
            self.routes, key=lambda r: (-len(r.prefix), r.methods is None, r.name)
        )

    def match(self, path: str, method: str) -> Route | None:
        for route in self._lookup:
            if route.matches(path, method):
                return route
        return None

    def get(self, name: str) -> Route | None:
        return self._by_name.get(name)

    def evolve(self, proposed: RouteTable) -> RouteTable:
        """`proposed`, with each surviving route's allocation rebalanced from this one, so a
        replaced table moves only the members its weight changes have to move."""
        routes = []
        for route in proposed.routes:
            current = self._by_name.get(route.name)
            if current is not None:
                route = replace(route, allocation=current.allocation.rebalance(route.weights))
            routes.append(route)
        return RouteTable(routes)

    def with_route(self, route: Route) -> RouteTable:
        return RouteTable(route if r.name == route.name else r for r in self.routes)

    def to_dict(self) -> dict[str, Any]:
        return {"routes": [r.to_dict() for r in self.routes]}

    def allocations(self) -> dict[str, list[list[int | str]]]:
        return {r.name: r.allocation.to_list() for r in self.routes}

    def with_allocations(self, raw: Mapping[str, Any]) -> RouteTable:
        """Restore persisted allocations (the members' placement); ignore ones that no longer
        fit the weights rather than refusing to start."""
        routes = []
        for route in self.routes:
            try:
                allocation = Allocation.from_list(raw[route.name])
            except (KeyError, TypeError, ValueError):
                allocation = route.allocation
            routes.append(replace(route, allocation=allocation))
        return RouteTable(routes)


def parse_route_table(
    data: Any,
    backends: Iterable[str],
    *,
    max_read_timeout: float | None = None,
    default_shadow_percent: float = 100.0,
) -> RouteTable:
    """Validate a table proposed as JSON data; raise InvalidRouteTable naming every problem."""
    errors = _Errors()
    known = frozenset(backends)
    if not isinstance(data, Mapping):
        errors.add("body", "must be a JSON object with a 'routes' list")
        errors.raise_if_any()
    errors.unknown_keys("body", data, {"routes", "version", "reason"})
    raw_routes = data.get("routes")
    if not isinstance(raw_routes, list) or not raw_routes:
        errors.add("routes", "must be a non-empty list")
        errors.raise_if_any()
    routes = []
    for index, raw in enumerate(raw_routes):
        at = f"routes[{index}]"
        route = _parse_route(raw, at, known, max_read_timeout, default_shadow_percent, errors)
        if route is not None:
            routes.append(route)
    _check_unique(routes, errors)
    errors.raise_if_any()
    return RouteTable(routes)


class _Errors:
    def __init__(self) -> None:
        self.details: list[dict[str, str]] = []

    def add(self, where: str, message: str) -> None:
        self.details.append({"field": where, "message": message})

    def unknown_keys(self, where: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
        for key in sorted(set(raw) - allowed):
            self.add(f"{where}.{key}", "unknown field")

    def raise_if_any(self) -> None:
        if self.details:
            raise InvalidRouteTable(self.details)


_ROUTE_KEYS = {"name", "prefix", "methods", "weights", "timeouts", "shadow"}


def _parse_route(
    raw: Any,
    at: str,
    known: frozenset[str],
    max_read: float | None,
    shadow_percent: float,
    errors: _Errors,
) -> Route | None:
    if not isinstance(raw, Mapping):
        errors.add(at, "must be an object")
        return None
    before = len(errors.details)
    errors.unknown_keys(at, raw, _ROUTE_KEYS)
    name, prefix = raw.get("name"), raw.get("prefix")
    if not isinstance(name, str) or not _NAME.match(name):
        errors.add(f"{at}.name", "must be 1-40 lowercase letters, digits, '-' or '_'")
    if not isinstance(prefix, str) or not _PREFIX.match(prefix) or "//" in prefix:
        errors.add(f"{at}.prefix", "must be a path starting with '/'")
    elif prefix != "/" and prefix.endswith("/"):
        errors.add(f"{at}.prefix", "must not end with '/'")
    methods = _parse_methods(raw.get("methods"), f"{at}.methods", errors)
    weights = _parse_weights(raw.get("weights"), f"{at}.weights", known, errors)
    timeouts = _parse_timeouts(raw.get("timeouts"), f"{at}.timeouts", max_read, errors)
    shadow = _parse_shadow(raw.get("shadow"), f"{at}.shadow", known, shadow_percent, errors)
    if len(errors.details) > before:
        return None
    assert isinstance(name, str) and isinstance(prefix, str)  # else an error was added above
    return Route(name, prefix, weights, methods, timeouts, shadow)


def _parse_methods(raw: Any, at: str, errors: _Errors) -> frozenset[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(m, str) for m in raw):
        errors.add(at, "must be null or a non-empty list of HTTP methods")
        return None
    unknown = sorted({m for m in raw if m not in HTTP_METHODS})
    if unknown:
        errors.add(at, f"unknown HTTP methods {unknown}; use upper case, e.g. 'GET'")
    return frozenset(raw)


def _parse_weights(
    raw: Any, at: str, known: frozenset[str], errors: _Errors
) -> tuple[tuple[str, int], ...]:
    if not isinstance(raw, Mapping) or not raw:
        errors.add(at, "must be an object of backend name -> integer weight")
        return ()
    for backend, weight in raw.items():
        if backend not in known:
            errors.add(f"{at}.{backend}", f"unknown backend; known: {sorted(known)}")
        if isinstance(weight, bool) or not isinstance(weight, int):
            errors.add(f"{at}.{backend}", "weight must be an integer")
        elif not 0 <= weight <= MAX_WEIGHT:
            errors.add(f"{at}.{backend}", f"weight must be between 0 and {MAX_WEIGHT}")
    weights = tuple((str(b), w) for b, w in raw.items() if isinstance(w, int))
    if all(isinstance(w, int) for w in raw.values()) and sum(w for _, w in weights) <= 0:
        errors.add(at, "at least one weight must be positive (all-zero routes nowhere)")
    return weights


def _parse_timeouts(
    raw: Any, at: str, max_read: float | None, errors: _Errors
) -> RouteTimeouts | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) != {"connect", "read"}:
        errors.add(at, "must be null or an object with 'connect' and 'read' seconds")
        return None
    values = [raw["connect"], raw["read"]]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in values):
        errors.add(at, "connect and read must be positive numbers of seconds")
        return None
    if max_read is not None and raw["read"] >= max_read:
        errors.add(f"{at}.read", f"must be below the gateway's own limit of {max_read:g}s")
    return RouteTimeouts(float(raw["connect"]), float(raw["read"]))


def _parse_shadow(
    raw: Any, at: str, known: frozenset[str], default_percent: float, errors: _Errors
) -> ShadowRule | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        errors.add(at, "must be null or an object")
        return None
    errors.unknown_keys(at, raw, {"backend", "percent", "ignore"})
    backend, percent, ignore = (
        raw.get("backend"),
        raw.get("percent", default_percent),
        raw.get("ignore", []),
    )
    if backend not in known:
        errors.add(f"{at}.backend", f"unknown backend; known: {sorted(known)}")
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 <= percent <= 100:
        errors.add(f"{at}.percent", "must be a number from 0 to 100")
    if not isinstance(ignore, list) or not all(isinstance(p, str) and p for p in ignore):
        errors.add(f"{at}.ignore", "must be a list of field patterns, e.g. 'meta.*'")
        ignore = []
    return ShadowRule(str(backend), float(percent), tuple(ignore))


def _check_unique(routes: list[Route], errors: _Errors) -> None:
    names = [r.name for r in routes]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.add("routes", f"route name '{name}' is used more than once")
    seen: set[tuple[str, frozenset[str] | None]] = set()
    for route in routes:
        key = (route.prefix, route.methods)
        if key in seen:
            errors.add("routes", f"prefix '{route.prefix}' is routed twice for the same methods")
        seen.add(key)
