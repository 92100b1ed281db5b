"""An extracted service's app from its parts: the runtime in the lifespan, readiness on its
own DB, the data-mode admin route, and every contract of the brief (create_service_app). What
is the service's own comes in as routers and an `extra` lifespan part (its gRPC server, its
consumers), which starts after the data door exists and stops before it closes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI

from libs.db import ping
from libs.dualwrite import MigrationSpec
from libs.extraction import admin
from libs.extraction.data import ExtractionData
from libs.extraction.preconditions import ModePreconditions
from libs.extraction.runtime import extraction_runtime
from libs.service import ServiceOptions, create_service_app

Extra = Callable[[FastAPI, ExtractionData], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class ExtractionConfig:
    process: str  # its name in logs, metrics and the served-by header
    spec: MigrationSpec
    legacy_url: str
    new_url: str
    upgrade: Callable[[sa.Engine], None]  # its own DB's migrations
    mode: str  # the data mode it starts in
    sync_interval: float
    server_limit: float
    admin_token: str
    # What the admin API checks before a data-mode change (None: nothing outside the service).
    preconditions: ModePreconditions | None = None
    # Where the data mode switched to live is kept, so a restart resumes it (None: not kept).
    mode_file: Path | None = None


def create_extraction_app(
    config: ExtractionConfig, routers: Sequence[APIRouter] = (), extra: Extra | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with extraction_runtime(
            config.spec,
            config.legacy_url,
            config.new_url,
            upgrade=config.upgrade,
            mode=config.mode,
            sync_interval=config.sync_interval,
            registry=app.state.metrics.registry,
            mode_file=config.mode_file,
        ) as data:
            app.state.data = data
            app.state.readiness.add_check("own_db", lambda: ping(data.writer.new))
            async with extra(app, data) if extra else nullcontext():
                yield

    options = ServiceOptions(config.process, server_limit_seconds=config.server_limit)
    app = create_service_app(options, lifespan)
    app.state.admin_token = config.admin_token
    app.state.mode_preconditions = config.preconditions
    for router in (*routers, admin.router):
        app.include_router(router)
    return app
