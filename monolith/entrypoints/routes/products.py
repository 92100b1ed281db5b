from __future__ import annotations

from fastapi import APIRouter

from libs.response import ok
from monolith.entrypoints.deps import ReadUowDep
from monolith.entrypoints.schemas import Limit, Offset, ProductIdPath
from monolith.service_layer import catalog

router = APIRouter(prefix="/api/products", tags=["products"])


@router.get("")
def list_products(uow: ReadUowDep, limit: Limit = 20, offset: Offset = 0):
    return ok(catalog.list_products(uow, limit, offset))


@router.get("/{product_id}")
def get_product(product_id: ProductIdPath, uow: ReadUowDep):
    return ok(catalog.get_product(product_id, uow))
