"""The admin API: token-protected, validated, atomic, logged and persisted."""

from __future__ import annotations

import json

import httpx
import pytest

from gateway.app import create_app
from libs.response import is_valid_envelope
from tests.gateway.conftest import RunningGateway, gateway_settings, serving


def routes_of(admin: httpx.Client) -> dict:
    data = admin.get("/admin/routes").json()["data"]
    for r in data["routes"]:
        r.pop("share_percent")
    return data


def test_the_admin_api_without_a_token_is_a_401_envelope(gateway: RunningGateway):
    answer = httpx.get(f"{gateway.url}/admin/routes")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert is_valid_envelope(answer.json()) and answer.json()["error"]["code"] == "UNAUTHENTICATED"


def test_the_admin_api_with_a_wrong_token_is_a_403_envelope(gateway: RunningGateway):
    answer = httpx.put(
        f"{gateway.url}/admin/routes", headers={"Authorization": "Bearer nope"}, json={}
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "FORBIDDEN"


def test_the_default_table_sends_every_prefix_to_the_monolith(gateway: RunningGateway):
    with gateway.admin() as admin:
        routes = admin.get("/admin/routes").json()["data"]["routes"]
    prefixes = {r["prefix"] for r in routes}
    assert prefixes == {
        "/api/members",
        "/api/products",
        "/api/orders",
        "/api/payments",
        "/api/shipments",
        "/api/views",
    }
    assert all(r["share_percent"]["monolith"] == 100 for r in routes)


def test_replacing_the_table_takes_effect_and_is_logged(gateway: RunningGateway):
    with gateway.admin() as admin:
        table = routes_of(admin)
        table["routes"][0]["weights"] = {"monolith": 0, "member-service": 10}
        body = {"routes": table["routes"], "version": table["version"], "reason": "stage 2 done"}
        answer = admin.put("/admin/routes", json=body)
        assert answer.status_code == 200
        assert answer.json()["data"]["version"] == table["version"] + 1
        changes = admin.get("/admin/changes").json()["data"]["changes"]
    assert changes[0]["weights"] == {"members": {"monolith": 0, "member-service": 10}}
    assert changes[0]["reason"] == "stage 2 done"
    assert httpx.get(f"{gateway.url}/api/members/1").headers["x-served-by"] == "member-service"


def unknown_backend(routes):
    routes[0]["weights"] = {"monolith": 5, "ghost-service": 5}


def negative_weight(routes):
    routes[0]["weights"] = {"monolith": 11, "member-service": -1}


def all_zero(routes):
    routes[0]["weights"] = {"monolith": 0, "member-service": 0}


def duplicate_prefix(routes):
    routes[1]["prefix"] = routes[0]["prefix"]


def fractional_weight(routes):
    routes[0]["weights"] = {"monolith": 0.5, "member-service": 0.5}


@pytest.mark.parametrize(
    "spoil", [unknown_backend, negative_weight, all_zero, duplicate_prefix, fractional_weight]
)
def test_a_bad_table_is_refused_with_a_422_envelope_and_changes_nothing(
    gateway: RunningGateway, spoil
):
    with gateway.admin() as admin:
        before = admin.get("/admin/routes").json()["data"]
        table = routes_of(admin)
        # Make a valid change too, so a partial apply would show.
        table["routes"][2]["weights"] = {"monolith": 1, "order-service": 1}
        spoil(table["routes"])
        answer = admin.put("/admin/routes", json={"routes": table["routes"]})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "INVALID_ROUTE_TABLE"
        assert answer.json()["error"]["details"]
        assert admin.get("/admin/routes").json()["data"] == before
        assert admin.get("/admin/changes").json()["data"]["changes"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "INVALID_JSON"),
        (b"[]", 422, "INVALID_ROUTE_TABLE"),
        (b'{"routes": "all of them"}', 422, "INVALID_ROUTE_TABLE"),
        (b'{"routes": [{"name": "x"}]}', 422, "INVALID_ROUTE_TABLE"),
        (
            b'{"routes": [{"name": "x", "prefix": "/x", "weights": {"monolith": 1}}], '
            b'"version": 999}',
            409,
            "VERSION_CONFLICT",
        ),
    ],
)
def test_a_malformed_body_is_refused_and_changes_nothing(
    gateway: RunningGateway, body: bytes, status: int, code: str
):
    with gateway.admin() as admin:
        before = admin.get("/admin/routes").json()["data"]
        answer = admin.put("/admin/routes", content=body)
        assert answer.status_code == status, answer.text
        assert is_valid_envelope(answer.json()) and answer.json()["error"]["code"] == code
        assert admin.get("/admin/routes").json()["data"] == before


def test_changes_survive_a_restart_and_members_keep_their_backend(tmp_path, backends):
    settings = gateway_settings(tmp_path, backends)
    with serving(create_app(settings)) as url:
        gateway = RunningGateway(url, settings)
        gateway.set_weights("members", {"monolith": 7, "member-service": 3})
        gateway.set_weights("members", {"monolith": 5, "member-service": 5})
        tokens = [gateway.member_token(m) for m in range(1, 101)]
        placed = routes_of_members(url, tokens)
    saved = json.loads((tmp_path / "gateway-state.json").read_text())
    assert saved["table"]["routes"][0]["weights"] == {"monolith": 5, "member-service": 5}
    with serving(create_app(settings)) as url:
        gateway = RunningGateway(url, settings)
        with gateway.admin() as admin:
            members = admin.get("/admin/routes").json()["data"]["routes"][0]
            changes = admin.get("/admin/changes").json()["data"]["changes"]
        assert members["weights"] == {"monolith": 5, "member-service": 5}
        assert len(changes) == 2
        assert routes_of_members(url, tokens) == placed


def routes_of_members(url: str, tokens: list[str]) -> list[str]:
    with httpx.Client(base_url=url) as client:
        return [
            client.get("/api/members/me", headers={"Authorization": f"Bearer {t}"}).headers[
                "x-routed-to"
            ]
            for t in tokens
        ]
