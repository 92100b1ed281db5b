"""The pages the web and the app show, `/api/views/...`, composed by fan-out until the read
model serves them from views built from events (stage 9): the member, its orders and their
payments asked of their owners and stitched together (read_model/fanout.py), in the read
model's shapes, so the stage-9 ramp compares like with like.

The owners are asked through the gateway with the caller's own token, so the page is right at
every stage, whoever owns members, orders and payments at the time; the token is checked here
first, which costs no call. The handlers are async and share one client, made in the app's
lifespan: a sync handler would hold a worker thread while its calls wait, and those calls may
come back to this same process (the monolith owns members until stage 4), so under load every
worker would be waiting for a call that needs a worker. Each call gets what is left of the
request's budget, a little less of it passed on, so an owner's own 504 is the answer."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Header, Request

from libs.bearer import bearer_token, current_member
from libs.openapi import MEMBER_TOKEN, answers
from libs.response import ok
from monolith.entrypoints.schemas import OrderIdPath
from read_model.fanout import compose_my_page_http, compose_order_http

router = APIRouter(prefix="/api/views", tags=["views"])
CONNECT_TIMEOUT_SECONDS = 1.0
HINT = "Send 'Authorization: Bearer <token>' from login."


def compose_client(base_url: str, read_timeout: float) -> httpx.AsyncClient:
    """The client of the composition's calls, to the gateway at `base_url`. `read_timeout`
    holds only outside a request: within one, each call waits what is left of its budget."""
    timeout = httpx.Timeout(
        connect=CONNECT_TIMEOUT_SECONDS,
        read=read_timeout,
        write=read_timeout,
        pool=CONNECT_TIMEOUT_SECONDS,
    )
    return httpx.AsyncClient(
        base_url=base_url, timeout=timeout, limits=httpx.Limits(max_connections=100)
    )


@answers(401, security=MEMBER_TOKEN)
async def caller_token(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> str:
    """The caller's bearer token, once this process has verified it (401 otherwise). Async:
    FastAPI runs a sync dependency on a worker thread."""
    current_member(request, authorization)
    return bearer_token(authorization, HINT)


Token = Annotated[str, Depends(caller_token)]


def _client(request: Request) -> httpx.AsyncClient:
    return request.app.state.views_client


@router.get("/my-page")
async def my_page(request: Request, token: Token):
    return ok(await compose_my_page_http(_client(request), token))


@router.get("/orders/{order_id}")
async def order_detail(request: Request, order_id: OrderIdPath, token: Token):
    return ok(await compose_order_http(_client(request), token, order_id))
