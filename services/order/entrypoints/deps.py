"""Dependencies that make route signatures read as types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from libs.extraction import ExtractionData
from services.order.catalogue import CatalogueClient


def _data(request: Request) -> ExtractionData:
    return request.app.state.data


def _catalogue(request: Request) -> CatalogueClient:
    return request.app.state.catalogue


DataDep = Annotated[ExtractionData, Depends(_data)]
CatalogueDep = Annotated[CatalogueClient, Depends(_catalogue)]
