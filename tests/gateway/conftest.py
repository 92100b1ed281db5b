"""Real sockets: small backends built with create_service_app play the monolith and the new
service, and the gateway runs under uvicorn in front of them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from gateway.app import create_app
from infra.settings import Settings
from infra.supervisor import free_port
from libs.auth import TokenIssuer
from libs.response import ApiError, ok
from libs.service import ServiceOptions, create_service_app
from tests.support.servers import serving

ADMIN_TOKEN = "test-admin-token"


@dataclass
class Behaviour:
    """How a test backend misbehaves; tests change it while the backend runs."""

    fail_every: int = 0  # answer 500 on every n-th request (0: never)
    delay: float = 0.0
    extra: dict[str, Any] | None = None  # merged into every answer's data
    seen: int = 0


def make_backend(name: str, behaviour: Behaviour) -> FastAPI:
    app = create_service_app(ServiceOptions(name, server_limit_seconds=5.0))

    @app.get("/api/members/big/{size}")
    async def big(size: int):
        async def chunks():
            for _ in range(size // 65536):
                yield b"x" * 65536
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    @app.get("/api/members/echo-headers")
    async def echo_headers(request: Request, hop: int = 0):
        """The headers the backend received; with ?hop=1 its answer names one in Connection."""
        answer = ok({"headers": dict(request.headers)})
        if hop:
            answer.headers["Connection"] = "X-Backend-Hop"
            answer.headers["X-Backend-Hop"] = "for the gateway only"
            answer.headers["X-Backend-End-To-End"] = "kept"
        return answer

    @app.api_route("/api/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def answer(path: str, request: Request):
        behaviour.seen += 1
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour.fail_every and behaviour.seen % behaviour.fail_every == 0:
            raise ApiError(500, "INJECTED_FAILURE", f"{name} failed on purpose")
        body = await request.body()
        data = {
            "backend": name,
            "path": f"/api/{path}",
            "method": request.method,
            "body": body.decode(),
            "deadline_ms": request.headers.get("x-shop-deadline-ms"),
            **(behaviour.extra or {}),
        }
        return ok(data)

    return app


@dataclass
class Backend:
    name: str
    url: str
    behaviour: Behaviour


@pytest.fixture
def backends() -> Iterator[dict[str, Backend]]:
    with (
        serving(make_backend("monolith", old := Behaviour())) as old_url,
        serving(make_backend("member-service", new := Behaviour())) as new_url,
    ):
        yield {
            "monolith": Backend("monolith", old_url, old),
            "member-service": Backend("member-service", new_url, new),
        }


def gateway_settings(tmp_path: Path, backends: dict[str, Backend], **overrides) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "admin_token": ADMIN_TOKEN,
        # order-service is declared by no extraction yet: a backend no process listens on.
        "gateway_backends": {name: b.url for name, b in backends.items()}
        | {"order-service": f"http://127.0.0.1:{free_port()}"},
        **overrides,
    }
    return Settings(**values)


@dataclass
class RunningGateway:
    url: str
    settings: Settings

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        )

    def set_weights(self, route: str, weights: dict[str, int]) -> None:
        with self.admin() as admin:
            table = admin.get("/admin/routes").json()["data"]
            for r in table["routes"]:
                if r["name"] == route:
                    r["weights"] = weights
                r.pop("share_percent")
            answer = admin.put("/admin/routes", json={"routes": table["routes"]})
            assert answer.status_code == 200, answer.text

    def member_token(self, member_id: int) -> str:
        return TokenIssuer(self.settings.jwt_secret, 3600).issue(member_id)


@pytest.fixture
def gateway(tmp_path: Path, backends: dict[str, Backend]) -> Iterator[RunningGateway]:
    settings = gateway_settings(tmp_path, backends)
    with serving(create_app(settings)) as url:
        yield RunningGateway(url, settings)
