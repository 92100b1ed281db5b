"""The migration console in headless Chromium: routes, weights, the live split, ramp state and
shadow mismatches, refreshing without a reload, in front of small stand-in backends. The
migration panels (stage, extractions, events) and the docs' screenshot are tested against a
real system in test_console_migration.py."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import ADMIN_TOKEN, RunningGateway

pytestmark = pytest.mark.slow  # whole systems or a browser: not in `make test-fast`

MONOLITH_COUNT = '[data-route="members"] tr[data-backend="monolith"] .requests'
MISMATCHES = '[data-shadow-route="members"] .mismatches'
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        message = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("SHOP_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail(message)
        pytest.skip(message)


class Traffic:
    """Members browsing in a thread while the browser watches."""

    def __init__(self, gateway: RunningGateway, members: int = 200) -> None:
        self.gateway = gateway
        self.tokens = [gateway.member_token(m) for m in range(1, members + 1)]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with httpx.Client(base_url=self.gateway.url) as client:
            i = 0
            while not self.stop.is_set():
                headers = {"Authorization": f"Bearer {self.tokens[i % len(self.tokens)]}"}
                client.get("/api/members/me", headers=headers)
                client.get("/api/orders", headers=headers)
                i += 1

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def prepare(gateway: RunningGateway, backends) -> None:
    backends["member-service"].behaviour.extra = {"grade": "gold"}
    with gateway.admin() as admin:
        routes = admin.get("/admin/routes").json()["data"]["routes"]
        for r in routes:
            r.pop("share_percent")
        routes[0]["weights"] = {"monolith": 9, "member-service": 1}
        orders = next(r for r in routes if r["name"] == "orders")
        orders["weights"] = {"monolith": 100, "order-service": 0}  # a candidate not running
        routes[0]["shadow"] = {
            "backend": "member-service",
            "percent": 20,
            "ignore": ["data.backend", "data.deadline_ms"],
        }
        assert admin.put("/admin/routes", json={"routes": routes}).status_code == 200


def start_ramps(gateway: RunningGateway) -> None:
    with gateway.admin() as admin:
        # order-service is not running: its ramp must roll back by itself.
        for route, candidate, steps in (
            ("orders", "order-service", [10, 50, 100]),
            ("members", "member-service", [10, 30, 50]),
        ):
            plan = {
                "route": route,
                "candidate": candidate,
                "steps": steps,
                "interval_seconds": 1.0,
                "min_requests": 10,
            }
            assert admin.post("/admin/ramps", json=plan).status_code == 202


def test_the_console_shows_routes_ramps_and_shadow_and_refreshes_live(
    gateway: RunningGateway, backends, tmp_path
):
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    prepare(gateway, backends)
    with Traffic(gateway), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{gateway.url}/console#token={ADMIN_TOKEN}")
        members = page.locator('[data-route="members"]')
        members.wait_for()
        assert members.locator('tr[data-backend="member-service"] .share').inner_text() == "10%"
        first = _requests(page)
        page.wait_for_function(
            f"() => Number(document.querySelector({MONOLITH_COUNT!r}).textContent) > {first}"
        )
        start_ramps(gateway)
        page.wait_for_selector('[data-ramp-route="orders"] .badge[data-state="rolled_back"]')
        # Three steps, each judged on 100 requests a side from one sequential client, in the
        # same interpreter as the gateway, the backends and the console's migration gathers.
        page.wait_for_selector(
            '[data-ramp-route="members"] .badge[data-state="completed"]', timeout=40_000
        )
        page.wait_for_function(
            f"() => Number(document.querySelector({MISMATCHES!r})?.textContent) > 0"
        )
        assert "data.grade" in page.locator("#mismatches").inner_text()
        assert "order-service failed" in page.locator('[data-ramp-route="orders"]').inner_text()
        page.wait_for_timeout(1500)  # one more poll, so the live split reflects 50%
        shot = tmp_path / "console.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_the_console_asks_for_the_token_when_it_has_none(gateway: RunningGateway):
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page()
        page.goto(f"{gateway.url}/console")
        page.wait_for_selector("#login:not([hidden])")
        page.fill("#token", ADMIN_TOKEN)
        page.click("#login button")
        page.wait_for_selector('[data-route="members"]')
        assert page.locator("#status").get_attribute("data-state") == "live"
        browser.close()


def _requests(page) -> int:
    cell = page.locator(MONOLITH_COUNT)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = cell.inner_text()
        if text.isdigit():
            return int(text)
        time.sleep(0.1)
    raise AssertionError("no request count on the console")
