"""Signup takes an Idempotency-Key, at the monolith and at the member service: a retry with
the same key and body answers the first signup (Idempotency-Replayed: true) instead of 409
EMAIL_TAKEN, and signs nobody else up; the same key with another body is 422
IDEMPOTENCY_KEY_REUSED. The keys move with the members: a signup keyed at the monolith
replays at the member service sharing its DB, and still replays once the member service dual
writes and once it writes its own DB alone."""

from __future__ import annotations

import uuid

import httpx
import pytest

from infra.settings import Settings
from monolith.entrypoints.app import create_app as create_monolith
from tests.services.member.conftest import PASSWORD
from tests.support.brokers import NO_BROKER
from tests.support.servers import serving

pytestmark = pytest.mark.slow


@pytest.fixture
def monolith(db_urls, tmp_path):
    """The monolith over the member service's legacy DB."""
    settings = Settings(
        data_dir=tmp_path / "monolith", monolith_db_url=db_urls[0], kafka_bootstrap=NO_BROKER
    )
    with serving(create_monolith(settings)) as url, httpx.Client(base_url=url) as http:
        yield http


def _signup(client: httpx.Client, key: str, email: str, name: str = "Kim") -> httpx.Response:
    body = {"email": email, "password": PASSWORD, "name": name}
    return client.post("/api/members", json=body, headers={"Idempotency-Key": key})


def _retried(client: httpx.Client, key: str, email: str, first: httpx.Response) -> None:
    again = _signup(client, key, email)
    assert again.status_code == 201, again.text
    assert again.headers.get("Idempotency-Replayed") == "true"
    assert again.json()["data"] == first.json()["data"]


def test_a_retried_signup_answers_the_first_member(member_service, monolith):
    with member_service() as service:
        for client in (service.http, monolith):
            key, email = uuid.uuid4().hex, f"kim-{uuid.uuid4().hex[:8]}@example.com"
            first = _signup(client, key, email)
            assert first.status_code == 201, first.text
            _retried(client, key, email, first)
            other = _signup(client, key, email, name="Lee")
            assert other.status_code == 422, other.text
            assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
            unkeyed = client.post(
                "/api/members", json={"email": email, "password": PASSWORD, "name": "Kim"}
            )
            assert unkeyed.status_code == 409  # without the key, a repeat is a conflict


def test_a_signup_key_follows_the_members_across_modes(member_service, monolith):
    with member_service() as service:
        key, email = uuid.uuid4().hex, f"park-{uuid.uuid4().hex[:8]}@example.com"
        first = _signup(monolith, key, email)
        assert first.status_code == 201, first.text
        _retried(service.http, key, email, first)  # shared: the legacy DB
        for mode in ("dual", "single"):
            switched = service.move(mode)
            assert switched.status_code == 200, switched.text
            _retried(service.http, key, email, first)
