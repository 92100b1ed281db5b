"""Routing inside the monolith (the talk's literal approach) and the gateway in front of the
real monolith: same table format, same weights, same members on the same side."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.app import create_app as create_gateway
from infra.settings import Settings
from libs.auth import TokenIssuer
from libs.response import is_valid_envelope
from libs.routing import parse_route_table
from libs.routing.upstream import Upstreams
from monolith.entrypoints.app import create_app as create_monolith
from tests.gateway.conftest import ADMIN_TOKEN, Backend, serving

NINE_TO_ONE = {
    "routes": [
        {
            "name": "members",
            "prefix": "/api/members",
            "weights": {"monolith": 9, "member-service": 1},
        }
    ]
}


@pytest.fixture
def monolith_settings(tmp_path, backends: dict[str, Backend]) -> Settings:
    return Settings(
        data_dir=tmp_path,
        admin_token=ADMIN_TOKEN,
        monolith_forwarding_backends={"member-service": backends["member-service"].url},
        monolith_forwarding=NINE_TO_ONE,
    )


def test_the_monolith_forwards_its_configured_share_sticky_per_member(monolith_settings):
    issuer = TokenIssuer(monolith_settings.jwt_secret, 3600)
    with serving(create_monolith(monolith_settings)) as url, httpx.Client(base_url=url) as c:
        served = {}
        for member in range(1, 301):
            headers = {"Authorization": f"Bearer {issuer.issue(member)}"}
            sides = {c.get("/api/members/me", headers=headers).headers["x-served-by"] for _ in "ab"}
            assert len(sides) == 1
            served[member] = sides.pop()
        products = c.get("/api/products")
    assert products.headers["x-served-by"] == "monolith" and products.status_code == 200
    split = Counter(served.values())
    assert 15 <= split["member-service"] <= 45, split
    # The gateway's core, given the same table, places every member on the same side.
    route = parse_route_table(NINE_TO_ONE, {"monolith", "member-service"}).routes[0]
    assert all(route.choose(f"member:{m}") == side for m, side in served.items())


def test_the_forwarding_pool_opens_with_the_app_not_on_the_first_request(
    monolith_settings, monkeypatch: pytest.MonkeyPatch
):
    starts, closes = [], []
    start, close = Upstreams.start, Upstreams.close

    async def counted_start(self):
        starts.append(self)
        await start(self)

    async def counted_close(self):
        closes.append(self)
        await close(self)

    monkeypatch.setattr(Upstreams, "start", counted_start)
    monkeypatch.setattr(Upstreams, "close", counted_close)
    issuer = TokenIssuer(monolith_settings.jwt_secret, 3600)
    with serving(create_monolith(monolith_settings)) as url:
        assert len(starts) == 1  # at startup, before any request could race to make one
        with ThreadPoolExecutor(16) as pool:
            answers = list(
                pool.map(
                    lambda m: httpx.get(
                        f"{url}/api/members/me",
                        headers={"Authorization": f"Bearer {issuer.issue(m)}"},
                    ),
                    range(1, 65),
                )
            )
        assert {a.headers["x-served-by"] for a in answers} == {"monolith", "member-service"}
        assert len(starts) == 1
    assert closes == starts


def test_without_configuration_the_monolith_forwards_nothing(tmp_path):
    settings = Settings(data_dir=tmp_path)
    with serving(create_monolith(settings)) as url:
        answer = httpx.get(f"{url}/api/members/me")
    assert answer.headers["x-served-by"] == "monolith"
    assert "set-cookie" not in answer.headers


def test_the_gateway_in_front_of_the_real_monolith_passes_its_answers_through(tmp_path):
    monolith_settings = Settings(data_dir=tmp_path / "monolith")
    with serving(create_monolith(monolith_settings)) as monolith_url:
        settings = Settings(
            data_dir=tmp_path / "gateway",
            admin_token=ADMIN_TOKEN,
            gateway_backends={"monolith": monolith_url},
        )
        with serving(create_gateway(settings)) as url:
            products = httpx.get(f"{url}/api/products?limit=3")
            missing = httpx.get(f"{url}/api/products/999999")
    assert products.status_code == 200
    assert products.headers["x-served-by"] == "monolith"
    assert products.headers["x-routed-to"] == "monolith"
    assert is_valid_envelope(products.json())
    assert missing.status_code == 404 and is_valid_envelope(missing.json())
    assert missing.headers["x-served-by"] == "monolith"
