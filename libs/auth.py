"""Member credentials shared by the monolith and the extracted member service: the same
password hashes and the same signed tokens, so a member logged in on one side is accepted by
the other during the ramp."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from functools import cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from libs.validation import valid_id

ISSUER = "strangler-shop"
# argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): strong enough to make
# offline guessing expensive, light enough that a burst of signups on a 2-core laptop does
# not push requests past the server's time limit.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` is the one `stored_hash` was made from. No hash (no such member):
    False, after the same work against a dummy hash, so a login for an unknown email takes
    as long as one with a wrong password and its timing does not tell which emails exist."""
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class TokenIssuer:
    secret: str
    ttl_seconds: int

    def issue(self, member_id: int) -> str:
        now = int(time.time())
        claims = {"sub": str(member_id), "iss": ISSUER, "iat": now, "exp": now + self.ttl_seconds}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def member_id(self, token: str) -> int:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["sub", "exp", "iss"]},
            )
            member_id = int(claims["sub"])
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidToken(str(exc)) from exc
        # Signed by us but naming no member we can have: an id past BIGINT was an
        # OverflowError (a 500) in the first query that used it.
        if not valid_id(member_id):
            raise InvalidToken("the token's subject is not a member id")
        return member_id
