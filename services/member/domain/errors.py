"""Domain errors of the member service. They name what went wrong in the member domain's
words; the HTTP and gRPC layers map the kind to a status."""

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


def member_not_found(member_id: int) -> NotFound:
    return NotFound("MEMBER_NOT_FOUND", f"Member {member_id} does not exist.")
