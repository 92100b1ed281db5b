"""Shared DB stage: the monolith and the member service run side by side over one legacy DB,
and a member logged in on one side is accepted by the other (the gateway may send any request
of the ramp to either)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from monolith.entrypoints.app import create_app as create_monolith
from tests.services.member.conftest import PASSWORD, auth
from tests.support.servers import serving


@pytest.fixture
def monolith(settings_for):
    app = create_monolith(settings_for("shared"), seed=False)
    with serving(app) as url, httpx.Client(base_url=url, timeout=15) as http:
        yield http


@pytest.fixture
def service(member_service):
    with member_service("shared") as service:
        yield service.http


def signup_and_login(http: httpx.Client) -> tuple[str, str]:
    email = f"kim-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Kim"}
    assert http.post("/api/members", json=body).status_code == 201
    login = http.post("/api/members/login", json={"email": email, "password": PASSWORD})
    return email, login.json()["data"]["token"]


def test_a_member_logged_in_on_the_monolith_is_accepted_by_the_member_service(monolith, service):
    email, token = signup_and_login(monolith)
    me = service.get("/api/members/me", headers=auth(token))
    assert me.status_code == 200
    assert me.json()["data"]["email"] == email
    assert me.headers["X-Served-By"] == "member-service"


def test_a_member_logged_in_on_the_member_service_is_accepted_by_the_monolith(monolith, service):
    email, token = signup_and_login(service)
    me = monolith.get("/api/members/me", headers=auth(token))
    assert me.status_code == 200
    assert me.json()["data"]["email"] == email
    assert me.headers["X-Served-By"] == "monolith"


def test_both_sides_answer_the_same_profile_for_the_same_member(monolith, service):
    _, token = signup_and_login(monolith)
    service.patch("/api/members/me", json={"name": "Kim Minji"}, headers=auth(token))
    on_monolith = monolith.get("/api/members/me", headers=auth(token)).json()["data"]
    on_service = service.get("/api/members/me", headers=auth(token)).json()["data"]
    assert on_monolith == on_service
    assert on_service["name"] == "Kim Minji"
