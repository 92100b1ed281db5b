"""The member API, path for path and envelope for envelope the monolith's, so the gateway can
send a member's request to either side during the ramp."""

from __future__ import annotations

from fastapi import APIRouter, Request

from libs.bearer import CurrentMember
from libs.openapi import errors
from libs.response import ApiError, ok
from services.member.entrypoints.deps import DataDep, TokensDep
from services.member.entrypoints.schemas import (
    IdempotencyKey,
    LoginIn,
    MemberCreate,
    MemberUpdate,
)
from services.member.service_layer import commands, points
from services.member.service_layer import members as handlers

router = APIRouter(prefix="/api/members", tags=["members"])


def _announce(request: Request) -> None:
    # The member's event committed with the change: wake the relay rather than wait for its
    # poll (in the shared-DB stage the event is in the legacy DB's outbox, the monolith's).
    request.app.state.relay.notify()


@router.post("", status_code=201)
def signup(request: Request, body: MemberCreate, data: DataDep, key: IdempotencyKey = None):
    """A retry with the same Idempotency-Key and body answers the first signup again
    (Idempotency-Replayed: true) instead of 409 EMAIL_TAKEN."""
    outcome = handlers.signup(commands.Signup(**body.model_dump(), idempotency_key=key), data)
    if outcome.replayed:
        return ok(outcome.body, status=outcome.status, headers={"Idempotency-Replayed": "true"})
    _announce(request)
    return ok(outcome.body, status=outcome.status)


@router.post("/login", responses=errors(401))
def login(body: LoginIn, data: DataDep, tokens: TokensDep):
    member_id = handlers.login(commands.Login(body.email, body.password), data)
    return ok(
        {
            "token": tokens.issue(member_id),
            "token_type": "Bearer",
            "expires_in": tokens.ttl_seconds,
            "member_id": member_id,
        }
    )


@router.get("/me")
def me(member_id: CurrentMember, data: DataDep):
    return ok(handlers.profile(member_id, data))


@router.patch("/me")
def update_me(request: Request, body: MemberUpdate, member_id: CurrentMember, data: DataDep):
    if body.name is None and body.phone is None:
        raise ApiError(422, "NOTHING_TO_UPDATE", "Send at least one of: name, phone.")
    cmd = commands.UpdateProfile(member_id, body.name, body.phone)
    member = handlers.update_profile(cmd, data)
    _announce(request)
    return ok(member)


@router.get("/me/points")
def my_points(member_id: CurrentMember, data: DataDep):
    return ok(points.history(member_id, data))
