"""The member API behaves as the monolith's in every data mode, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.services.member.conftest import auth

# Dual writes on PostgreSQL commit in two phases (tests/conftest.py: two_phase).
pytestmark = pytest.mark.usefixtures("two_phase")


@pytest.mark.parametrize("mode", ["shared", "dual", "single"])
def test_a_member_signs_up_logs_in_and_keeps_a_profile(member_service, mode):
    with member_service(mode) as service:
        email, member_id = service.signup("Kim")
        token = service.token(email)

        me = service.http.get("/api/members/me", headers=auth(token))
        assert me.json()["data"] | {"created_at": None, "updated_at": None} == {
            "id": member_id,
            "email": email,
            "name": "Kim",
            "phone": None,
            "points": 0,
            "created_at": None,
            "updated_at": None,
        }
        assert me.headers["X-Served-By"] == "member-service"

        patched = service.http.patch(
            "/api/members/me", json={"phone": "010-1234-5678"}, headers=auth(token)
        )
        assert patched.json()["data"]["phone"] == "010-1234-5678"
        points = service.http.get("/api/members/me/points", headers=auth(token))
        assert points.json()["data"] == {"balance": 0, "history": []}


def test_an_email_signs_up_once_whatever_its_case(member_service):
    with member_service("single") as service:
        email, _ = service.signup("Lee")
        again = service.http.post(
            "/api/members", json={"email": email.upper(), "password": "password-123", "name": "L"}
        )
        assert (again.status_code, again.json()["error"]["code"]) == (409, "EMAIL_TAKEN")


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(member_service):
    with member_service("shared") as service:
        email, _ = service.signup("Park")
        reply = service.http.post(
            "/api/members/login", json={"email": email, "password": "not-the-password"}
        )
        assert (reply.status_code, reply.json()["error"]["code"]) == (401, "INVALID_CREDENTIALS")
