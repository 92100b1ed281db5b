"""The parked-events admin API: what a process's consumer groups could not apply, and a
replay once the cause is fixed. Every call needs the admin bearer token (libs/bearer.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from libs.bearer import Actor
from libs.events.consumer import AlreadyReplayed, ConsumerRunner, ParkedEventNotFound, ReplayFailed
from libs.events.inbox import ParkedEvent
from libs.response import ApiError, ok

Runners = Sequence[ConsumerRunner]


def parked_events_router(runners: Runners | Callable[[Request], Runners]) -> APIRouter:
    """The routes for these runners (the consumer groups of one process, one database).
    Pass a function of the request instead of the list when the runners are built later,
    in the lifespan (`lambda request: request.app.state.consumers`)."""
    find = runners if callable(runners) else (lambda _request: runners)
    if not callable(runners) and not runners:
        raise ValueError("the parked-events API needs at least one consumer runner")
    router = APIRouter(prefix="/admin/events", tags=["admin"])

    def groups(request: Request) -> dict[str, ConsumerRunner]:
        by_group = {runner.group_id: runner for runner in find(request)}
        if not by_group:
            raise ApiError(503, "NO_CONSUMERS", "This process runs no consumer group yet.")
        return by_group

    # A plain `def`: the engine is synchronous, so the read runs in the thread pool.
    @router.get("/parked")
    def list_parked(
        _: Actor,
        request: Request,
        replayed: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ):
        by_group = groups(request)
        first = next(iter(by_group.values()))
        with first.engine.connect() as conn:
            found = first.inbox.parked_events(conn, list(by_group), replayed=replayed, limit=limit)
        return ok({"parked": [parked_view(event) for event in found]})

    @router.post("/parked/{parked_id}/replay")
    async def replay_parked(parked_id: int, _: Actor, request: Request):
        by_group = groups(request)
        first = next(iter(by_group.values()))
        group = await asyncio.to_thread(_group_of, first, parked_id)
        runner = by_group.get(group or "")
        if runner is None:
            raise _not_found(parked_id)
        try:
            outcome = await runner.replay(parked_id)
        except ParkedEventNotFound as exc:
            raise _not_found(parked_id) from exc
        except AlreadyReplayed as exc:
            raise ApiError(
                409, "ALREADY_REPLAYED", f"Parked event {parked_id} was already replayed."
            ) from exc
        except ReplayFailed as exc:
            raise ApiError(
                422, "REPLAY_FAILED", f"Parked event {parked_id} still fails.", [str(exc)]
            ) from exc
        return ok({"id": parked_id, "group": runner.group_id, "outcome": outcome})

    return router


def parked_view(event: ParkedEvent) -> dict[str, Any]:
    """JSON for an operator: the raw bytes as text (undecodable bytes escaped, not dropped),
    since a malformed message is exactly what they need to see."""
    return {
        "id": event.id,
        "group": event.consumer_group,
        "topic": event.topic,
        "partition": event.partition,
        "offset": event.offset,
        "key": _text(event.key),
        "value": _text(event.value),
        "reason": event.reason,
        "parked_at": event.parked_at.isoformat(),
        "replayed_at": event.replayed_at.isoformat() if event.replayed_at else None,
    }


def _group_of(runner: ConsumerRunner, parked_id: int) -> str | None:
    with runner.engine.connect() as conn:
        parked = runner.inbox.parked_event(conn, parked_id)
    return parked.consumer_group if parked else None


def _not_found(parked_id: int) -> ApiError:
    return ApiError(404, "PARKED_EVENT_NOT_FOUND", f"No parked event has id {parked_id}.")


def _text(raw: bytes | None) -> str | None:
    return raw.decode("utf-8", errors="backslashreplace") if raw is not None else None
