"""Request bodies: the monolith's member API, field for field, so a request the gateway sends
to either side is validated the same way. Strict types and no unknown fields: a wrong type or
a typo is a 422, never a silent coercion."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header
from pydantic import BaseModel, ConfigDict, EmailStr, StringConstraints

from libs.validation import PRINTABLE

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), PRINTABLE
]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 -]{6,18}$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128), PRINTABLE]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=100)
]


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
