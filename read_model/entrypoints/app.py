"""Composition root of the read model (`shop run read-model`, HTTP 8020): the views of
read_model/views.py fed from `shop.members`, `shop.orders` and `shop.payments` by a consumer
group, stored behind the store port, cached in Redis when SHOP_REDIS_URL is set, and served at
/api/views with the envelope. The read side never calls a write model: it answers from its
views or says it has none yet."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request

from infra.settings import ReadModelSettings
from libs.auth import TokenIssuer
from libs.bearer import Actor, CurrentMember
from libs.db import ping
from libs.events.admin import parked_events_router
from libs.response import ApiError, ok
from libs.service import ServiceOptions, create_service_app
from read_model import views
from read_model.cache import ViewCache
from read_model.feed import Feed, open_feed
from read_model.generations import Generations, number_of
from read_model.metrics import read_model_metrics
from read_model.rebuild import RebuildStatus, rebuild
from read_model.store import View

MAX_ID = 2**63 - 1
OrderId = Annotated[int, Path(ge=1, le=MAX_ID)]

views_router = APIRouter(prefix="/api/views", tags=["views"])
admin_router = APIRouter(prefix="/admin/read-model", tags=["admin"])


def _feed(request: Request) -> Feed:
    return request.app.state.feed


def _served(view: View) -> Any:
    headers = {"X-View-Version": str(view.version), "X-View-Updated-At": f"{view.updated_at:.3f}"}
    return ok(view.data, headers=headers)


@views_router.get("/my-page")
async def my_page(request: Request, member_id: CurrentMember):
    view = await _feed(request).projector.read(views.MY_PAGE, str(member_id))
    if view is None:
        raise ApiError(
            404, "VIEW_NOT_FOUND", f"No page for member {member_id} yet: its events have not "
            "arrived, or the member does not exist."
        )  # fmt: skip
    return _served(view)


@views_router.get("/orders/{order_id}")
async def order_detail(request: Request, order_id: OrderId, member_id: CurrentMember):
    view = await _feed(request).projector.read(views.ORDER, str(order_id))
    # Another member's order is as absent as an unknown one: its existence is not told.
    if view is None or view.data.get("member_id") != member_id:
        raise ApiError(404, "ORDER_NOT_FOUND", f"Order {order_id} does not exist.")
    return _served(view)


@admin_router.get("")
async def describe(request: Request, _: Actor):
    feed = _feed(request)
    counts = {kind: await feed.store.count(kind) for kind in views.KINDS}
    generations: Generations = request.app.state.generations
    return ok(
        {
            "generation": feed.generation,
            "views": counts,
            "generations": await asyncio.to_thread(generations.describe),
            "rebuild": request.app.state.rebuild_status.to_json(),
        }
    )


@admin_router.get("/views/{kind}/{key}")
async def view_document(request: Request, kind: str, key: str, _: Actor):
    """The whole document of one view, bookkeeping included (applied sequences, held
    events): what the demo's invariant and an operator compare with the owners."""
    if kind not in views.KINDS:
        raise ApiError(404, "VIEW_KIND_NOT_FOUND", f"Views are of kinds {', '.join(views.KINDS)}.")
    view = await _feed(request).store.get(kind, key)
    if view is None:
        raise ApiError(404, "VIEW_NOT_FOUND", f"No {kind} view {key!r}.")
    return ok(asdict(view))


@admin_router.post("/rebuild", status_code=202)
async def start_rebuild(request: Request, _: Actor):
    """Starts a rebuild (202); `GET /admin/read-model` shows its progress. 409 while one
    runs."""
    state = request.app.state
    if state.rebuild_task is not None and not state.rebuild_task.done():
        raise ApiError(409, "REBUILD_RUNNING", "A rebuild is running; wait for it to swap.")
    state.rebuild_status = RebuildStatus()
    state.rebuild_task = asyncio.create_task(_rebuild(request.app), name="read-model rebuild")
    return ok(state.rebuild_status.to_json(), status=202)


async def _rebuild(app: FastAPI) -> None:
    state = app.state

    async def swap(feed: Feed) -> Feed:
        await asyncio.to_thread(state.generations.swap, feed.generation)
        old, state.feed = state.feed, feed
        return old

    with contextlib.suppress(Exception):  # the status says what failed
        await rebuild(
            state.settings,
            state.generations,
            state.metrics.registry,
            state.cache,
            swap,
            state.rebuild_status,
        )


def create_app(settings: ReadModelSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        generations = Generations(settings.read_model_db)
        cache = None
        if settings.redis_url:
            cache = ViewCache(
                settings.redis_url,
                ttl_seconds=settings.read_model_cache_ttl_seconds,
                namespace=f"{settings.kafka_topic_prefix}read-model",
            )
        app.state.generations, app.state.cache = generations, cache
        serving = await asyncio.to_thread(generations.serving)
        app.state.feed = await open_feed(
            settings, serving, generations, app.state.metrics.registry, cache
        )
        read_model_metrics(app.state.metrics.registry).generation.set(number_of(serving))
        app.state.readiness.add_check("own_db", lambda: ping(generations.engine))
        await app.state.feed.runner.start()  # does not wait for the broker
        try:
            yield
        finally:
            task = app.state.rebuild_task
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            await app.state.feed.stop()  # finishes and commits its batch
            await app.state.feed.close()
            if cache is not None:
                await cache.close()
            generations.close()

    app = create_service_app(
        ServiceOptions("read-model", server_limit_seconds=settings.read_model_server_limit),
        lifespan,
    )
    app.state.settings = settings
    app.state.admin_token = settings.admin_token
    app.state.tokens = TokenIssuer(settings.jwt_secret, settings.token_ttl_seconds)
    app.state.rebuild_task = None
    app.state.rebuild_status = RebuildStatus()
    parked = parked_events_router(lambda request: [request.app.state.feed.runner])
    for router in (views_router, admin_router, parked):
        app.include_router(router)
    return app
