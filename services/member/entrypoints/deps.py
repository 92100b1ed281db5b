"""Dependencies that make route signatures read as types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from libs.auth import TokenIssuer
from libs.extraction import ExtractionData


def _data(request: Request) -> ExtractionData:
    return request.app.state.data


def _tokens(request: Request) -> TokenIssuer:
    return request.app.state.tokens


DataDep = Annotated[ExtractionData, Depends(_data)]
TokensDep = Annotated[TokenIssuer, Depends(_tokens)]
