from __future__ import annotations

from fastapi import APIRouter, Depends

from libs.bearer import CurrentMember
from libs.openapi import errors
from libs.response import ApiError, ok
from monolith.entrypoints.deps import (
    IdempotencyKey,
    ReadUowDep,
    TokensDep,
    UowDep,
    member_feature,
)
from monolith.entrypoints.schemas import LoginIn, MemberCreate, MemberUpdate
from monolith.service_layer import commands
from monolith.service_layer import members as handlers

# Retired feature by feature as members move to the member service (features.py).
router = APIRouter(prefix="/api/members", tags=["members"], dependencies=[Depends(member_feature)])


@router.post("", status_code=201)
def signup(body: MemberCreate, uow: UowDep, key: IdempotencyKey = None):
    """A retry with the same Idempotency-Key and body answers the first signup again
    (Idempotency-Replayed: true) instead of 409 EMAIL_TAKEN."""
    outcome = handlers.signup(commands.Signup(**body.model_dump(), idempotency_key=key), uow)
    headers = {"Idempotency-Replayed": "true"} if outcome.replayed else None
    return ok(outcome.body, status=outcome.status, headers=headers)


@router.post("/login", responses=errors(401))
def login(body: LoginIn, uow: ReadUowDep, tokens: TokensDep):
    member_id = handlers.login(commands.Login(body.email, body.password), uow)
    return ok(
        {
            "token": tokens.issue(member_id),
            "token_type": "Bearer",
            "expires_in": tokens.ttl_seconds,
            "member_id": member_id,
        }
    )


@router.get("/me")
def me(member_id: CurrentMember, uow: ReadUowDep):
    return ok(handlers.profile(member_id, uow))


@router.patch("/me")
def update_me(body: MemberUpdate, member_id: CurrentMember, uow: UowDep):
    if body.name is None and body.phone is None:
        raise ApiError(422, "NOTHING_TO_UPDATE", "Send at least one of: name, phone.")
    return ok(
        handlers.update_profile(commands.UpdateProfile(member_id, body.name, body.phone), uow)
    )


@router.get("/me/points")
def my_points(member_id: CurrentMember, uow: ReadUowDep):
    return ok(handlers.points(member_id, uow))
