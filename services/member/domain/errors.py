"""Errors of the member domain, built on the shared kinds in libs/errors.py."""

from __future__ import annotations

from libs.errors import Conflict, DomainError, Invalid, NotFound, Unauthorized

__all__ = [
    "Conflict",
    "DomainError",
    "Invalid",
    "NotFound",
    "Unauthorized",
    "member_not_found",
]


def member_not_found(member_id: int) -> NotFound:
    return NotFound("MEMBER_NOT_FOUND", f"Member {member_id} does not exist.")
