"""The routing core: weights, stickiness, and members moving only where the weights moved."""

from __future__ import annotations

import random

import pytest

from libs.routing import (
    SPACE,
    Allocation,
    InvalidRouteTable,
    MemberKeys,
    Route,
    RouteTable,
    parse_route_table,
    sticky_key,
    target_units,
)

BACKENDS = {"monolith", "member-service", "member-service-v2", "read-model"}
MEMBERS = [f"member:{i}" for i in range(1, 2001)]


def owners(route: Route) -> dict[str, str]:
    return {m: route.choose(m) for m in MEMBERS}


def route(*weights: tuple[str, int]) -> Route:
    return Route("members", "/api/members", tuple(weights))


def test_target_units_are_proportional_and_cover_the_key_space():
    units = target_units([("a", 9), ("b", 1)])
    assert sum(units.values()) == SPACE
    assert abs(units["a"] / SPACE - 0.9) < 1e-9


def test_nine_to_one_sends_about_ten_percent_of_members_to_the_new_backend():
    split = owners(route(("monolith", 9), ("member-service", 1)))
    share = sum(1 for b in split.values() if b == "member-service") / len(split)
    assert 0.08 <= share <= 0.12


def test_a_member_lands_on_the_same_backend_while_weights_stay_put():
    r = route(("monolith", 5), ("member-service", 5))
    assert all(r.choose(m) == r.choose(m) for m in MEMBERS)
    again = Route("members", "/api/members", (("monolith", 5), ("member-service", 5)))
    assert owners(again) == owners(r)


def test_zero_weight_backend_gets_nobody_and_full_weight_gets_everybody():
    assert set(owners(route(("monolith", 0), ("member-service", 10))).values()) == {
        "member-service"
    }
    assert set(owners(route(("monolith", 10), ("member-service", 0))).values()) == {"monolith"}


def test_raising_the_new_share_moves_members_only_from_old_to_new():
    r = route(("monolith", 9), ("member-service", 1))
    before = owners(r)
    for new in (3, 5, 7, 10):
        r = r.with_weights([("monolith", 10 - new), ("member-service", new)])
        after = owners(r)
        moved = {(before[m], after[m]) for m in MEMBERS if before[m] != after[m]}
        assert moved <= {("monolith", "member-service")}
        before = after
    assert set(before.values()) == {"member-service"}


def test_with_three_backends_moving_weight_from_a_to_c_leaves_b_members_in_place():
    r = route(("monolith", 4), ("member-service", 3), ("member-service-v2", 3))
    before = owners(r)
    r = r.with_weights([("monolith", 1), ("member-service", 3), ("member-service-v2", 6)])
    after = owners(r)
    moved = {(before[m], after[m]) for m in MEMBERS if before[m] != after[m]}
    assert moved == {("monolith", "member-service-v2")}


def test_any_sequence_of_weight_changes_moves_members_only_from_losers_to_gainers():
    rng = random.Random(7)
    names = ["monolith", "member-service", "member-service-v2", "read-model"]
    r = route(*[(n, rng.randint(0, 5) + 1) for n in names])
    for _ in range(40):
        weights = [(n, rng.randint(0, 6)) for n in names]
        if not sum(w for _, w in weights):
            continue
        old_share = {n: u for n, u in r.allocation.units().items()}
        before = owners(r)
        r = r.with_weights(weights)
        new_share = r.allocation.units()
        for m in MEMBERS:
            a, b = before[m], r.choose(m)
            if a != b:
                assert new_share.get(a, 0) < old_share.get(a, 0)
                assert new_share.get(b, 0) > old_share.get(b, 0)
        assert r.allocation == Allocation(r.allocation.slices)


def test_a_rebalance_with_unchanged_weights_moves_nobody():
    r = route(("monolith", 7), ("member-service", 3))
    assert r.with_weights(r.weights).allocation == r.allocation


def test_an_allocation_survives_a_round_trip_through_json_lists():
    r = route(("monolith", 3), ("member-service", 7)).with_weights(
        [("monolith", 6), ("member-service", 4)]
    )
    assert Allocation.from_list(r.allocation.to_list()) == r.allocation


def test_longest_prefix_wins_and_methods_narrow_a_route():
    table = parse_route_table(
        {
            "routes": [
                {"name": "all", "prefix": "/", "weights": {"monolith": 1}},
                {"name": "members", "prefix": "/api/members", "weights": {"monolith": 1}},
                {
                    "name": "member-reads",
                    "prefix": "/api/members",
                    "methods": ["GET"],
                    "weights": {"member-service": 1},
                },
            ]
        },
        BACKENDS,
    )
    assert table.match("/api/members/me", "GET").name == "member-reads"
    assert table.match("/api/members/me", "POST").name == "members"
    assert table.match("/api/membership", "GET").name == "all"


def test_a_prefix_matches_whole_path_segments_only():
    table = RouteTable([Route("members", "/api/members", (("monolith", 1),))])
    assert table.match("/api/members", "GET") is not None
    assert table.match("/api/members/1", "GET") is not None
    assert table.match("/api/membersx", "GET") is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"routes": []}, "routes"),
        ({"routes": [{"name": "m", "prefix": "/x", "weights": {"nope": 1}}]}, "weights.nope"),
        ({"routes": [{"name": "m", "prefix": "/x", "weights": {"monolith": -1}}]}, "monolith"),
        ({"routes": [{"name": "m", "prefix": "/x", "weights": {"monolith": 0}}]}, "weights"),
        ({"routes": [{"name": "m", "prefix": "/x", "weights": {"monolith": 1.5}}]}, "monolith"),
        ({"routes": [{"name": "m", "prefix": "/x", "weights": {"monolith": True}}]}, "monolith"),
        ({"routes": [{"name": "m", "prefix": "x", "weights": {"monolith": 1}}]}, "prefix"),
        ({"routes": [{"name": "M!", "prefix": "/x", "weights": {"monolith": 1}}]}, "name"),
        (
            {"routes": [{"name": "m", "prefix": "/x", "weights": {"monolith": 1}, "x": 1}]},
            "routes[0].x",
        ),
        (
            {"routes": [{"name": "m", "prefix": "/x", "methods": ["get"], "weights": {"a": 1}}]},
            "methods",
        ),
        (
            {
                "routes": [
                    {"name": "m", "prefix": "/x", "weights": {"monolith": 1}},
                    {"name": "m", "prefix": "/y", "weights": {"monolith": 1}},
                ]
            },
            "routes",
        ),
        (
            {
                "routes": [
                    {
                        "name": "m",
                        "prefix": "/x",
                        "weights": {"monolith": 1},
                        "timeouts": {"connect": 1, "read": 99},
                    }
                ]
            },
            "timeouts.read",
        ),
        (
            {
                "routes": [
                    {
                        "name": "m",
                        "prefix": "/x",
                        "weights": {"monolith": 1},
                        "shadow": {"backend": "ghost", "percent": 10},
                    }
                ]
            },
            "shadow.backend",
        ),
    ],
)
def test_a_bad_table_is_refused_naming_the_field(body, field):
    with pytest.raises(InvalidRouteTable) as refused:
        parse_route_table(body, BACKENDS, max_read_timeout=8)
    assert any(field in d["field"] for d in refused.value.details), refused.value.details


def test_a_member_token_is_the_sticky_key_and_an_anonymous_caller_gets_a_session():
    members = MemberKeys(lambda token: {"good": 42}[token])
    assert sticky_key("Bearer good", None, members) == ("member:42", None)
    key, new_sid = sticky_key(None, None, members)
    assert new_sid and key == f"session:{new_sid}"
    assert sticky_key(None, f"a=b; shop_sid={new_sid}", members) == (key, None)
    assert sticky_key("Bearer forged", "shop_sid=s1", members) == ("session:s1", None)
