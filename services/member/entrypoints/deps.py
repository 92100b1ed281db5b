"""Dependencies that make route signatures read as types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from libs.auth import InvalidToken, TokenIssuer
from libs.response import ApiError
from services.member.adapters.data import MemberData

BEARER = {"WWW-Authenticate": "Bearer"}


def _data(request: Request) -> MemberData:
    return request.app.state.data


def _tokens(request: Request) -> TokenIssuer:
    return request.app.state.tokens


def _bearer(authorization: str | None, hint: str) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "UNAUTHENTICATED", hint, headers=BEARER)
    return token


def _current_member(
    tokens: Annotated[TokenIssuer, Depends(_tokens)],
    authorization: Annotated[str | None, Header()] = None,
) -> int:
    token = _bearer(authorization, "Send 'Authorization: Bearer <token>' from login.")
    try:
        return tokens.member_id(token)
    except InvalidToken as exc:
        raise ApiError(
            401, "INVALID_TOKEN", "The token is invalid or expired.", headers=BEARER
        ) from exc


DataDep = Annotated[MemberData, Depends(_data)]
TokensDep = Annotated[TokenIssuer, Depends(_tokens)]
CurrentMember = Annotated[int, Depends(_current_member)]
