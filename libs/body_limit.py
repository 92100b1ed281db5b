"""A request body limit in every process: a body larger than the process accepts is a 413
envelope, never parsed. Checked twice: against Content-Length before a byte is read, and while
reading a body that does not declare its length (chunked), where the body stops being read at
the limit. Without it a 102 MB JSON body to POST /api/orders was read and parsed whole before
its 422 (the monolith's RSS went from 134 MB to 1,013 MB).

Placed inside RequestContext (the 413 has X-Request-Id and X-Served-By) and outside the
handlers: once the limit is passed the application is told the caller went away, and whatever
it answers to that is replaced by the 413."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.response.server import error_response

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send, declared)
            return
        cut = _Cut(receive, send, self.max_bytes)
        try:
            await self.app(scope, cut.receive, cut.send)
        except Exception:
            if not cut.exceeded or cut.app_started:
                raise
        if cut.exceeded and not cut.app_started:
            await self._refuse(scope, receive, send, None)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, declared: int | None
    ) -> None:
        detail: dict[str, Any] = {"limit_bytes": self.max_bytes}
        if declared is not None:
            detail["content_length"] = declared
        message = f"The request body is over {self.max_bytes} bytes."
        # Connection: close, so the server does not read the rest of the body to reuse it.
        response = error_response(
            413, "PAYLOAD_TOO_LARGE", message, [detail], {"Connection": "close"}
        )
        await response(scope, receive, send)


class _Cut:
    """The request's receive, counted; past the limit it reports a disconnect and the
    application's answer to that is held back."""

    def __init__(self, receive: Receive, send: Send, max_bytes: int) -> None:
        self._receive, self._send, self.max_bytes = receive, send, max_bytes
        self.received = 0
        self.exceeded = False
        self.app_started = False

    async def receive(self) -> Message:
        if self.exceeded:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                self.exceeded = True
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.exceeded and not self.app_started:
            return  # the 413 goes out instead
        if message["type"] == "http.response.start":
            self.app_started = True
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit():
            return int(value)
    return None
