"""Domain errors every service raises: they name what went wrong in the domain's words (a
code and a message) and say which kind of failure it is. No web framework here; the
envelope layer maps each kind to its HTTP status, so no service repeats that table."""

from __future__ import annotations


class DomainError(Exception):
    status = 422

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Invalid(DomainError):
    """The request breaks a rule of the domain (422)."""

    status = 422


class NotFound(DomainError):
    """No such thing, or not this caller's (404): ids cannot be probed."""

    status = 404


class Conflict(DomainError):
    """The request is valid but the current state forbids it (409)."""

    status = 409


class Unauthorized(DomainError):
    """Credentials are wrong (401)."""

    status = 401


class Unavailable(DomainError):
    """Another service this one depends on did not answer (503); the caller may retry."""

    status = 503
