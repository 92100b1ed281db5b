"""A 405 names every method the path has (Allow, RFC 9110 15.5.6), not only the first route's:
GET and PATCH /api/members/me are two routes, and OPTIONS once answered `Allow: GET`."""

from __future__ import annotations

import httpx

from infra.settings import Settings
from libs.response import is_valid_envelope, ok
from libs.service import ServiceOptions, create_service_app
from monolith.entrypoints.app import create_app as create_monolith
from tests.support.brokers import NO_BROKER
from tests.support.servers import serving


def allowed(answer: httpx.Response) -> set[str]:
    return {m.strip() for m in answer.headers["allow"].split(",")}


def test_options_on_a_path_of_two_routes_lists_both_methods():
    app = create_service_app(ServiceOptions("allow-test"))

    @app.get("/things/me")
    async def read():
        return ok({})

    @app.patch("/things/me")
    async def change():
        return ok({})

    with serving(app) as url:
        answer = httpx.options(f"{url}/things/me")
        assert answer.status_code == 405
        assert is_valid_envelope(answer.json())
        assert answer.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert allowed(answer) == {"GET", "PATCH"}
        assert allowed(httpx.delete(f"{url}/things/me")) == {"GET", "PATCH"}


def test_the_monoliths_member_profile_allows_get_and_patch(tmp_path):
    settings = Settings(data_dir=tmp_path, kafka_bootstrap=NO_BROKER)
    with serving(create_monolith(settings)) as url:
        answer = httpx.options(f"{url}/api/members/me")
        assert answer.status_code == 405
        assert answer.headers["x-served-by"] == "monolith"
        assert allowed(answer) == {"GET", "PATCH"}
