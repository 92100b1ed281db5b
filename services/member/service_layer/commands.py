"""What a caller asks the member service to do."""

from __future__ import annotations

from dataclasses import dataclass

from libs.idempotency import fingerprint


@dataclass(frozen=True)
class Signup:
    email: str
    password: str
    name: str
    phone: str | None = None
    idempotency_key: str | None = None


SIGNUP = "signup"  # the operation a signup's Idempotency-Key is kept under
ANONYMOUS = 0  # the member id a signup's key is kept under: the caller is no member yet


def signup_hash(email: str, name: str, phone: str | None) -> str:
    """What a retry with the same Idempotency-Key must repeat. Not the password: a stored
    fingerprint of it would be an unsalted, fast hash of the password."""
    return fingerprint(SIGNUP, email=email, name=name, phone=phone)


@dataclass(frozen=True)
class Login:
    email: str
    password: str


@dataclass(frozen=True)
class UpdateProfile:
    member_id: int
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class SpendPoints:
    """A debit another service asks for: a points payment ("spend") or the points a refunded
    card payment had earned ("take-back", with its payment id). `key` is the caller's id of
    this attempt, minted before the call: a repeat of the call with it changes nothing."""

    member_id: int
    amount: int
    key: str
    reason: str = "spend"
    payment_id: int | None = None


@dataclass(frozen=True)
class CancelSpend:
    """The compensation of a spend whose payment did not go through: the points come back
    once; a cancel that arrives before its spend makes that spend refuse."""

    member_id: int
    key: str
