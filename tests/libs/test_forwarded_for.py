"""A process believes X-Forwarded-For only from proxies it was told to trust (none by default):
uvicorn's own default trusts loopback, so any local caller could name the admin actor the
change logs record."""

from __future__ import annotations

import threading
import time

import httpx

from infra.supervisor import free_port
from libs.bearer import Actor
from libs.observability.health import Readiness
from libs.observability.shutdown import GracefulServer, server_config
from libs.response import ok
from libs.service import ServiceOptions, create_service_app

TOKEN = "forwarded-for-test-token"


def admin_app():
    app = create_service_app(ServiceOptions("forwarded-test"))
    app.state.admin_token = TOKEN

    @app.get("/admin/whoami")
    async def whoami(actor: Actor):
        return ok({"actor": actor})

    return app


def actor_seen(trusted: str) -> str:
    port = free_port()
    config = server_config(
        admin_app(), host="127.0.0.1", port=port, grace_seconds=1, trusted_proxies=trusted
    )
    server = GracefulServer(config, Readiness(), 0.0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        answer = httpx.get(
            f"http://127.0.0.1:{port}/admin/whoami",
            headers={"Authorization": f"Bearer {TOKEN}", "X-Forwarded-For": "203.0.113.9"},
        )
        return answer.json()["data"]["actor"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_forwarded_for_header_from_an_untrusted_caller_is_ignored():
    assert actor_seen("") == "admin@127.0.0.1"


def test_a_trusted_proxy_may_name_the_client():
    assert actor_seen("127.0.0.1") == "admin@203.0.113.9"
