"""One client connection: size-prefixed frames in, responses out, in order.

Like a Kafka broker, requests on one connection are handled one at a time, so
responses come back in request order; clients open separate connections (for the
group coordinator, for fetching) so a long-polling fetch never delays a heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

from infra.devbroker import apis
from infra.devbroker.context import RequestContext

log = logging.getLogger(__name__)

_SIZE = struct.Struct(">i")
_HEADER_PREFIX = 8  # api_key i16, api_version i16, correlation_id i32
_DRAIN_CHUNK = 64 * 1024


class Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_request_bytes: int,
        make_context: Callable[[int, str, str], RequestContext],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._max_request_bytes = max_request_bytes
        self._make_context = make_context
        peer = writer.get_extra_info("peername")
        self.host = peer[0] if peer else "unknown"

    async def serve(self) -> None:
        try:
            while await self._serve_one():
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away; nothing of ours is half-done
        finally:
            self._writer.close()

    async def _serve_one(self) -> bool:
        size = _SIZE.unpack(await self._reader.readexactly(4))[0]
        if size < _HEADER_PREFIX:
            # Without a request header there is no correlation id to answer with and
            # the byte stream cannot be trusted any more: Kafka closes here too.
            log.info("closing %s: frame size %d cannot hold a request header", self.host, size)
            return False
        if size > self._max_request_bytes:
            await self._reject_oversized(size)
            return True
        frame = await self._reader.readexactly(size)
        response = await apis.dispatch(frame, self._context)
        if response is not None:
            self._writer.write(response)
            await self._writer.drain()
        return True

    async def _reject_oversized(self, size: int) -> None:
        """Read past the frame without keeping it, then answer with an error, so one
        oversized request neither exhausts memory nor desynchronises the stream."""
        prefix = await self._reader.readexactly(_HEADER_PREFIX)
        remaining = size - _HEADER_PREFIX
        while remaining:
            chunk = await self._reader.read(min(remaining, _DRAIN_CHUNK))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(chunk)
        api_key, version, correlation_id = struct.unpack(">hhi", prefix)
        log.info(
            "%s sent a %d-byte request, over the %d limit", self.host, size, self._max_request_bytes
        )
        self._writer.write(
            apis.error_response(api_key, version, correlation_id, apis.INVALID_REQUEST)
        )
        await self._writer.drain()

    def _context(self, api_version: int, client_id: str) -> RequestContext:
        return self._make_context(api_version, client_id, self.host)
