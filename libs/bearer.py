"""Bearer tokens on every API. `bearer_token` reads one from the Authorization header (401
UNAUTHENTICATED without it). `CurrentMember` is the member a route acts for, from a token the
process's `app.state.tokens` issued (401 INVALID_TOKEN when it is not valid); the monolith and
every extracted service accept the same tokens. `require_admin` is the
admin APIs' one door: the token compared in constant time with the process's
`app.state.admin_token` (SHOP_ADMIN_TOKEN), 403 FORBIDDEN when wrong; it answers who acted, for
the change logs."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from libs.auth import InvalidToken, TokenIssuer
from libs.response import ApiError

BEARER = {"WWW-Authenticate": "Bearer"}


def bearer_token(authorization: str | None, hint: str) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "UNAUTHENTICATED", hint, headers=BEARER)
    return token


def require_admin(request: Request) -> str:
    given = bearer_token(
        request.headers.get("authorization"),
        "The admin API needs 'Authorization: Bearer <admin token>'.",
    )
    token: str = request.app.state.admin_token
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(403, "FORBIDDEN", "The admin token is not valid.")
    client = request.client.host if request.client else "unknown"
    return f"admin@{client}"


Actor = Annotated[str, Depends(require_admin)]


def current_member(request: Request, authorization: Annotated[str | None, Header()] = None) -> int:
    token = bearer_token(authorization, "Send 'Authorization: Bearer <token>' from login.")
    tokens: TokenIssuer = request.app.state.tokens
    try:
        return tokens.member_id(token)
    except InvalidToken as exc:
        raise ApiError(
            401, "INVALID_TOKEN", "The token is invalid or expired.", headers=BEARER
        ) from exc


CurrentMember = Annotated[int, Depends(current_member)]
