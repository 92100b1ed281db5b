"""The contract middleware against fake ASGI apps: no server, no framework routes."""

from __future__ import annotations

import asyncio
import json

from libs.response.server import RequestContext, UnhandledErrorGuard
from libs.timeouts.server import ServerTimeLimit


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def __call__(self, message: dict) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return self.messages[0]["status"]

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    @property
    def body(self) -> dict:
        return json.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))


def scope(path: str = "/x", headers=()) -> dict:
    return {"type": "http", "method": "GET", "path": path, "headers": list(headers)}


async def receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def crashing_app(scope, receive, send):
    raise ValueError("boom")


async def slow_app(scope, receive, send):
    await asyncio.sleep(1)


async def test_the_guard_turns_a_crash_into_a_500_envelope():
    sent = Recorder()
    await UnhandledErrorGuard(crashing_app)(scope(), receive, sent)
    assert sent.status == 500
    assert sent.body["error"]["code"] == "INTERNAL_ERROR"


async def test_the_time_limit_answers_504_and_the_context_stamps_it():
    sent = Recorder()
    app = RequestContext(ServerTimeLimit(slow_app, limit_seconds=0.05), service_name="unit")
    await app(scope(headers=[(b"x-request-id", b"r-1")]), receive, sent)
    assert sent.status == 504
    assert sent.headers[b"x-request-id"] == b"r-1"
    assert sent.headers[b"x-served-by"] == b"unit"
    assert sent.body["meta"]["request_id"] == "r-1"


async def test_health_paths_are_exempt_from_the_time_limit():
    sent = Recorder()

    async def slowish(scope, receive, send):
        await asyncio.sleep(0.1)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    await ServerTimeLimit(slowish, limit_seconds=0.01)(scope("/health/ready"), receive, sent)
    assert sent.status == 200
