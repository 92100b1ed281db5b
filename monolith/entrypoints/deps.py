"""Dependencies that make route signatures read as types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from libs.auth import InvalidToken, TokenIssuer
from libs.response import ApiError
from monolith.service_layer.unit_of_work import UnitOfWork


def _uow(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.engine)


def _read_uow(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.engine, readonly=True)


def _tokens(request: Request) -> TokenIssuer:
    return request.app.state.tokens


def _current_member(
    tokens: Annotated[TokenIssuer, Depends(_tokens)],
    authorization: Annotated[str | None, Header()] = None,
) -> int:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "UNAUTHENTICATED",
            "Send 'Authorization: Bearer <token>' from login.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return tokens.member_id(token)
    except InvalidToken as exc:
        raise ApiError(
            401,
            "INVALID_TOKEN",
            "The token is invalid or expired.",
            headers={"WWW-Authenticate": "Bearer"},
        ) from exc


UowDep = Annotated[UnitOfWork, Depends(_uow)]
ReadUowDep = Annotated[UnitOfWork, Depends(_read_uow)]
TokensDep = Annotated[TokenIssuer, Depends(_tokens)]
CurrentMember = Annotated[int, Depends(_current_member)]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=100)
]
