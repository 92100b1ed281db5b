"""A process with one slow endpoint, run by the graceful-shutdown tests:
python tests/support/slow_service.py PORT GRACE DRAIN_DELAY"""

from __future__ import annotations

import asyncio
import sys

from libs.observability import configure_logging, serve
from libs.response import ok
from libs.service import ServiceOptions, create_service_app


def main(port: int, grace: float, drain_delay: float) -> None:
    configure_logging("slow-service")
    app = create_service_app(ServiceOptions("slow-service", server_limit_seconds=30))

    @app.get("/work/{seconds}")
    async def work(seconds: float):
        await asyncio.sleep(seconds)
        return ok({"worked": seconds})

    serve(
        app,
        host="127.0.0.1",
        port=port,
        readiness=app.state.readiness,
        grace_seconds=grace,
        drain_delay=drain_delay,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]))
