"""Graceful shutdown on SIGTERM: report not-ready first, stop accepting, let in-flight
requests finish within a grace period, run the lifespan's cleanup, exit 0."""

from __future__ import annotations

import json
import os
import signal
import threading
from types import FrameType

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from libs.observability.health import Readiness
from libs.response.envelope import envelope, error_body


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, readiness: Readiness, drain_delay: float) -> None:
        super().__init__(config)
        self.readiness = readiness
        self.drain_delay = drain_delay

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.readiness.state == "draining":
            # A second signal: the operator insists.
            if sig == signal.SIGINT:
                self.force_exit = True
            return
        self.readiness.mark_draining()
        # The drain delay keeps accepting while reporting not-ready, so a router that polls
        # /health/ready stops sending new work before the listener closes. The signal is not
        # recorded for re-raising (uvicorn's default), so a graceful stop exits 0.
        if self.drain_delay > 0:
            timer = threading.Timer(self.drain_delay, self._stop)
            timer.daemon = True
            timer.start()
        else:
            self._stop()

    def _stop(self) -> None:
        self.should_exit = True


# How long a process keeps an idle keep-alive connection open. It must be longer than any
# proxy in front of it keeps one pooled (the gateway: libs/routing/upstream.py), or the proxy
# may send a request on a connection the server is just closing: for a POST, which cannot be
# retried, that is a 502 to the client (the demo saw it: "backend failed: dropped").
KEEP_ALIVE_SECONDS = 75


def envelope_h11(served_by: str) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, except that a request it cannot parse (a bad request line,
    a malformed header, a body framing h11 refuses) is answered like every other error here:
    a JSON envelope with X-Request-Id and X-Served-By, not uvicorn's plain-text 400. No app
    code has run, so the request id is a fresh one."""

    class EnvelopeH11Protocol(H11Protocol):
        def send_400_response(self, msg: str) -> None:
            rid = os.urandom(16).hex()
            error = error_body("BAD_REQUEST", f"The request could not be parsed: {msg}")
            body = json.dumps(envelope(error=error, request_id=rid)).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", rid.encode()),
                (b"x-served-by", served_by.encode()),
                (b"connection", b"close"),
            ]
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
            self.transport.close()

    return EnvelopeH11Protocol


def server_config(
    app,
    *,
    host: str,
    port: int,
    grace_seconds: float,
    trusted_proxies: str = "",
) -> uvicorn.Config:
    """uvicorn's configuration for every process. `trusted_proxies`: the comma-separated
    addresses whose X-Forwarded-For and X-Forwarded-Proto are believed; none by default.
    uvicorn's own default believes them from 127.0.0.1, so any local caller could name the
    client an admin change is logged for (libs/bearer.py require_admin)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        # uvicorn annotates it int, but only hands it to asyncio.wait_for, which takes a float.
        timeout_graceful_shutdown=grace_seconds,  # type: ignore[arg-type]
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        access_log=False,
        log_config=None,
        lifespan="on",
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=trusted_proxies or None,
        http=envelope_h11(getattr(getattr(app, "state", None), "service_name", "shop")),
    )


def serve(
    app,
    *,
    host: str,
    port: int,
    readiness: Readiness,
    grace_seconds: float,
    drain_delay: float = 0.0,
    sockets=None,
    trusted_proxies: str = "",
) -> None:
    config = server_config(
        app, host=host, port=port, grace_seconds=grace_seconds, trusted_proxies=trusted_proxies
    )
    GracefulServer(config, readiness, drain_delay).run(sockets=sockets)
