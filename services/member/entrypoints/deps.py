"""Dependencies that make route signatures read as types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from libs.auth import TokenIssuer
from services.member.adapters.data import MemberData


def _data(request: Request) -> MemberData:
    return request.app.state.data


def _tokens(request: Request) -> TokenIssuer:
    return request.app.state.tokens


DataDep = Annotated[MemberData, Depends(_data)]
TokensDep = Annotated[TokenIssuer, Depends(_tokens)]
