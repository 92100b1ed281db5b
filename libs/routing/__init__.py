"""Weighted, sticky routing shared by the gateway (the ALB of the talk) and the monolith's own
forwarding (the talk's literal approach): one route model, one choice of backend."""

from libs.routing.allocation import SPACE, Allocation, Slice, target_units
from libs.routing.sticky import SESSION_COOKIE, MemberKeys, sticky_key, sticky_point
from libs.routing.table import (
    IDEMPOTENT_METHODS,
    SAFE_METHODS,
    InvalidRouteTable,
    Route,
    RouteTable,
    RouteTimeouts,
    ShadowRule,
    parse_route_table,
)

__all__ = [
    "IDEMPOTENT_METHODS",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "SPACE",
    "Allocation",
    "InvalidRouteTable",
    "MemberKeys",
    "Route",
    "RouteTable",
    "RouteTimeouts",
    "ShadowRule",
    "Slice",
    "parse_route_table",
    "sticky_key",
    "sticky_point",
    "target_units",
]
