"""Login answers as slowly for an unknown email as for a known one with a wrong password, so
its timing does not tell which emails have an account (the password hash is verified either
way, against a dummy hash when there is no member). Loose on purpose: a ratio over a few tries
on a shared machine, no absolute figure."""

from __future__ import annotations

import statistics
import time

from tests.monolith.conftest import Shop


def login_seconds(shop: Shop, email: str) -> float:
    started = time.perf_counter()
    answer = shop.http.post("/api/members/login", json={"email": email, "password": "wrong-one!"})
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "INVALID_CREDENTIALS"
    return time.perf_counter() - started


def test_an_unknown_email_takes_as_long_as_a_wrong_password(shop: Shop, db_url: str):
    if not db_url.startswith("sqlite"):
        return  # the hash's cost is the point, not the DB: one backend is enough
    known = "timing@example.com"
    body = {"email": known, "password": "password-123", "name": "Timing"}
    assert shop.http.post("/api/members", json=body).status_code == 201
    login_seconds(shop, known)  # warm both paths up
    login_seconds(shop, "nobody@example.com")
    tries = 5
    known_times = [login_seconds(shop, known) for _ in range(tries)]
    unknown_times = [login_seconds(shop, f"nobody-{n}@example.com") for n in range(tries)]
    ratio = statistics.median(unknown_times) / statistics.median(known_times)
    assert ratio >= 0.5, (known_times, unknown_times)
