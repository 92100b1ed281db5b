"""The catalogue's internal API: stock held and released per order, by whoever owns the order
(the order service calls it; the monolith's own orders hold in-process). Not a public path:
the gateway does not route it, and every call needs SHOP_ADMIN_TOKEN."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from libs.bearer import require_admin
from libs.response import ok
from monolith.domain.orders import LineRequest
from monolith.entrypoints.deps import ReadUowDep, UowDep
from monolith.entrypoints.schemas import OrderIdPath, StockHoldCreate
from monolith.service_layer import catalog, commands

router = APIRouter(
    prefix="/internal/stock-holds", tags=["catalogue"], dependencies=[Depends(require_admin)]
)


@router.put("/{order_id}")
def hold_stock(order_id: OrderIdPath, body: StockHoldCreate, uow: UowDep):
    """Idempotent: the same lines again answer the first hold with `applied: false`."""
    lines = [LineRequest(item.product_id, item.quantity) for item in body.items]
    return ok(catalog.hold_stock(commands.HoldStock(order_id, lines), uow))


@router.delete("/{order_id}")
def release_stock(order_id: OrderIdPath, uow: UowDep):
    """Idempotent: `restored` says whether this call gave the stock back. Releasing an order
    that holds nothing leaves a tombstone, so its late hold is refused."""
    return ok(catalog.release_stock(commands.ReleaseStock(order_id), uow))


@router.get("/{order_id}")
def read_hold(order_id: OrderIdPath, uow: ReadUowDep):
    return ok(catalog.get_hold(order_id, uow))
