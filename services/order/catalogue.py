"""The order service's client of the catalogue's owner (the monolith): stock is held for an
order, keyed by the order's id, and released by it. Both calls are idempotent, so a call
whose answer was lost is simply made again (or its hold released)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from libs.errors import Conflict, DomainError, Invalid, NotFound, Unavailable
from libs.response import ServiceError
from libs.response.client import parse_envelope
from libs.timeouts import CallTimeouts, make_blocking_http_client
from services.order.domain.orders import LineRequest, PricedLine

# The catalogue's refusals, which a repeat cannot change: the order must not be placed.
REFUSALS: dict[int, type[DomainError]] = {404: NotFound, 409: Conflict, 422: Invalid}


@dataclass(frozen=True)
class Hold:
    lines: list[PricedLine]
    applied: bool  # False: an earlier call had already held it


class CatalogueClient:
    def __init__(self, base_url: str, token: str, timeouts: CallTimeouts) -> None:
        self.base_url, self.timeouts = base_url, timeouts
        headers = {"Authorization": f"Bearer {token}"}
        self._http = make_blocking_http_client(base_url, timeouts, headers=headers)

    def close(self) -> None:
        self._http.close()

    def hold(self, order_id: int, lines: list[LineRequest]) -> Hold:
        """Takes the stock of every line, or none. Raises the catalogue's refusal (out of
        stock, unknown product) or Unavailable when its answer is unknown."""
        items = [{"product_id": line.product_id, "quantity": line.quantity} for line in lines]
        data = self._call("PUT", order_id, {"items": items})
        priced = [
            PricedLine(line["product_id"], line["name"], line["unit_price"], line["quantity"])
            for line in data["lines"]
        ]
        return Hold(priced, data["applied"])

    def release(self, order_id: int) -> bool:
        """Gives the order's stock back; True if this call did. Safe before the hold arrived:
        the catalogue then refuses the late hold."""
        return bool(self._call("DELETE", order_id)["restored"])

    def _call(self, method: str, order_id: int, body: dict | None = None) -> dict:
        try:
            response = self._http.request(method, f"/internal/stock-holds/{order_id}", json=body)
            return parse_envelope(response)
        except ServiceError as exc:
            refusal = REFUSALS.get(exc.status)
            if refusal is None:
                raise Unavailable(
                    "CATALOGUE_UNAVAILABLE", f"The catalogue answered {exc.status} {exc.code}."
                ) from exc
            raise refusal(exc.code, exc.message) from exc
        except httpx.HTTPError as exc:
            raise Unavailable(
                "CATALOGUE_UNAVAILABLE",
                f"The catalogue did not answer the stock hold: {type(exc).__name__}.",
            ) from exc
