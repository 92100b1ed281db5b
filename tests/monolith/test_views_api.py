"""The monolith's composed pages when what they call fails: the gateway down, or an owner too
slow for the request's budget. The composition on the whole system, answering what the owners
answer, is tests/services/commerce/test_views.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Header

from infra.settings import Settings
from infra.supervisor import free_port
from libs.response import ok
from libs.service import ServiceOptions, create_service_app
from monolith.entrypoints.app import create_app
from tests.monolith.conftest import Shop
from tests.support.brokers import NO_BROKER
from tests.support.servers import serving

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@contextmanager
def monolith(db_url: str, tmp_path, compose_url: str) -> Iterator[Shop]:
    settings = Settings(
        data_dir=tmp_path,
        monolith_db_url=db_url,
        kafka_bootstrap=NO_BROKER,
        monolith_views_compose_url=compose_url,
    )
    app = create_app(settings)
    with serving(app) as url, httpx.Client(base_url=url, timeout=15) as http:
        yield Shop(http, app.state.engine)


def test_a_gateway_that_is_down_makes_the_page_a_503_naming_the_call(db_url, tmp_path):
    with monolith(db_url, tmp_path, f"http://127.0.0.1:{free_port()}") as shop:
        token = shop.member()
        before = shop.snapshot()

        reply = shop.http.get("/api/views/my-page", headers=shop.auth(token))

        assert reply.status_code == 503 and reply.headers["X-Served-By"] == "monolith"
        error = reply.json()["error"]
        assert error["code"] == "VIEW_SOURCE_UNAVAILABLE"
        assert error["details"][0]["call"] in ("GET /api/members/me", "GET /api/orders")
        assert shop.snapshot() == before


def slow_owner(seen: list[int]) -> FastAPI:
    """An owner that would take ten seconds to answer, and records the deadline it is given
    (its own time limit shrinks to it, as every process's does)."""
    app = create_service_app(ServiceOptions("slow-owner", server_limit_seconds=30))

    @app.get("/api/{path:path}")
    async def slow(x_shop_deadline_ms: Annotated[int, Header()] = -1):
        seen.append(x_shop_deadline_ms)
        await asyncio.sleep(10)
        return ok()

    return app


def test_an_owner_too_slow_for_the_budget_answers_its_own_504_which_the_page_passes_on(
    db_url, tmp_path
):
    """The page's calls get what is left of the request's budget, a little less of it passed
    on as the owner's deadline: the owner's 504 arrives before the monolith gives up."""
    seen: list[int] = []
    with serving(slow_owner(seen)) as owner, monolith(db_url, tmp_path, owner) as shop:
        token = shop.member()
        headers = shop.auth(token) | {"X-Shop-Deadline-Ms": "1500"}
        started = time.monotonic()

        reply = shop.http.get("/api/views/orders/7", headers=headers)

        took = time.monotonic() - started
        assert reply.status_code == 504, reply.text
        error = reply.json()["error"]
        assert error["code"] == "TIMEOUT"
        # The owner's 504 (its limit the deadline passed on), not the monolith's own at 1.5 s.
        assert error["details"][0]["limit_seconds"] <= 1.2
        assert reply.headers["X-Served-By"] == "monolith"
        assert took < 1.5
        assert len(seen) == 2 and all(0 < ms <= 1500 - 300 for ms in seen)  # order, payment
