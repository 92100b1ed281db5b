"""Domain errors. They name what went wrong in the shop's words; the HTTP layer maps the kind
to a status code."""

from __future__ import annotations


class DomainError(Exception):
    kind = "invalid"  # one of: invalid, not_found, conflict, unauthorized

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotFound(DomainError):
    kind = "not_found"


class Conflict(DomainError):
    kind = "conflict"


class Unauthorized(DomainError):
    kind = "unauthorized"


class Invalid(DomainError):
    kind = "invalid"
