from __future__ import annotations

from infra.settings import Settings
from libs.auth import TokenIssuer
from libs.response import is_valid_envelope
from tests.monolith.conftest import Shop


def test_a_member_signs_up_logs_in_and_reads_and_updates_the_profile(shop: Shop):
    created = shop.http.post(
        "/api/members",
        json={"email": "Jiwoo@Example.com", "password": "password-123", "name": "Jiwoo"},
    )
    assert created.status_code == 201
    assert created.json()["data"]["email"] == "jiwoo@example.com"
    assert "password_hash" not in created.json()["data"]

    login = shop.http.post(
        "/api/members/login", json={"email": "jiwoo@example.com", "password": "password-123"}
    )
    token = login.json()["data"]["token"]
    me = shop.http.get("/api/members/me", headers=shop.auth(token)).json()["data"]
    assert me["name"] == "Jiwoo" and me["points"] == 0

    updated = shop.http.patch(
        "/api/members/me",
        headers=shop.auth(token),
        json={"name": "Jiwoo Park", "phone": "010-1234-5678"},
    )
    assert updated.json()["data"]["name"] == "Jiwoo Park"
    assert updated.json()["data"]["updated_at"] >= me["updated_at"]


def test_a_second_signup_with_the_same_email_is_a_conflict_and_creates_nothing(shop: Shop):
    body = {"email": "dup@example.com", "password": "password-123", "name": "A"}
    assert shop.http.post("/api/members", json=body).status_code == 201
    before = shop.snapshot()
    again = shop.http.post("/api/members", json={**body, "email": "DUP@example.com"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "EMAIL_TAKEN"
    assert shop.snapshot() == before


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(shop: Shop):
    shop.member("Lee")
    reply = shop.http.post(
        "/api/members/login", json={"email": "nobody@example.com", "password": "password-123"}
    )
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "INVALID_CREDENTIALS"


def test_a_wrong_login_answers_a_status_its_openapi_document_lists(shop: Shop):
    """Found by the fuzz run (tests/fuzz): login answered 401 where the document listed none."""
    reply = shop.http.post(
        "/api/members/login", json={"email": "0@0.com", "password": "password-123"}
    )
    document = shop.http.get("/openapi.json").json()
    documented = document["paths"]["/api/members/login"]["post"]["responses"]
    assert reply.status_code == 401 and is_valid_envelope(reply.json())
    schema = documented["401"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}


def test_the_token_is_a_jwt_any_holder_of_the_shared_secret_can_verify(shop: Shop):
    token = shop.member()
    member_id = TokenIssuer(Settings().jwt_secret, 60).member_id(token)
    me = shop.http.get("/api/members/me", headers=shop.auth(token)).json()["data"]
    assert me["id"] == member_id


def test_a_forged_or_missing_token_gets_a_401_envelope(shop: Shop):
    forged = TokenIssuer("x" * 40, 60).issue(1)
    for headers in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": "Basic abc"}):
        reply = shop.http.get("/api/members/me", headers=headers)
        assert reply.status_code == 401
        assert is_valid_envelope(reply.json())
        assert reply.headers["WWW-Authenticate"] == "Bearer"


def test_points_start_at_zero_with_an_empty_history(shop: Shop):
    token = shop.member()
    points = shop.http.get("/api/members/me/points", headers=shop.auth(token)).json()["data"]
    assert points == {"balance": 0, "history": []}
