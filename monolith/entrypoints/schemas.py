"""Request bodies. Strict types and no unknown fields: a wrong type or a typo is a 422, never
a silent coercion."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from libs.validation import MAX_ID, PRINTABLE, EntityId

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), PRINTABLE
]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 -]{6,18}$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128), PRINTABLE]

OrderIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
PaymentIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
ProductIdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MemberCreate(Body):
    email: EmailStr
    password: Password
    name: Name
    phone: Phone | None = None


class LoginIn(Body):
    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class MemberUpdate(Body):
    name: Name | None = None
    phone: Phone | None = None


class OrderLineIn(Body):
    product_id: EntityId
    quantity: Annotated[int, Field(ge=1, le=100)]


OrderItems = Annotated[list[OrderLineIn], Field(min_length=1, max_length=20)]


class OrderCreate(Body):
    items: OrderItems


class StockHoldCreate(Body):
    """The lines of an order to hold stock for: the same bounds as an order's."""

    items: OrderItems


class PaymentCreate(Body):
    order_id: EntityId
    method: Literal["card", "points"] = "card"


class FeatureChange(Body):
    """Feature name -> new value, e.g. {"features": {"members": "read-only"}}."""

    features: Annotated[
        dict[str, Annotated[str, StringConstraints(max_length=40)]],
        Field(min_length=1, max_length=10),
    ]
