"""A watch on an ASGI `send`: middleware that must know whether a response has started (it
can still answer with an envelope) or what status went out (for metrics and logs)."""

from __future__ import annotations

from starlette.types import Message, Send


class ResponseWatch:
    def __init__(self, send: Send) -> None:
        self._send = send
        self.status: int | None = None

    @property
    def started(self) -> bool:
        return self.status is not None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)
