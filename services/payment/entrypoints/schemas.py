"""Request bodies and parameters: the monolith's payment API, field for field."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field

MAX_ID = 2**53  # the largest integer every JSON client reads exactly

PaymentIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
OrderIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=100)
]


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    order_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    method: Literal["card", "points"] = "card"
