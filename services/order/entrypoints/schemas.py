"""Request bodies and parameters: the monolith's order API, field for field, so a request the
gateway sends to either side is validated the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field

MAX_ID = 2**53  # the largest integer every JSON client reads exactly

EntityId = Annotated[int, Field(ge=1, le=MAX_ID)]
OrderIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=100)
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OrderLineIn(Body):
    product_id: EntityId
    quantity: Annotated[int, Field(ge=1, le=100)]


class OrderCreate(Body):
    items: Annotated[list[OrderLineIn], Field(min_length=1, max_length=20)]
