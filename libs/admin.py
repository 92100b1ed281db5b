"""The admin APIs' one door: a bearer token compared in constant time with the process's
`app.state.admin_token` (SHOP_ADMIN_TOKEN). 401 UNAUTHENTICATED without a token, 403 FORBIDDEN
with a wrong one. The dependency answers who acted, for the change logs."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from libs.response import ApiError


def require_admin(request: Request) -> str:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError(
            401,
            "UNAUTHENTICATED",
            "The admin API needs 'Authorization: Bearer <admin token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token: str = request.app.state.admin_token
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(403, "FORBIDDEN", "The admin token is not valid.")
    client = request.client.host if request.client else "unknown"
    return f"admin@{client}"


Actor = Annotated[str, Depends(require_admin)]
