"""Member rules that hold whichever DB holds the rows."""

from __future__ import annotations


def normalise_email(email: str) -> str:
    """One spelling per address, so 'Kim@Example.com' cannot sign up twice."""
    return email.strip().lower()


def profile_changes(name: str | None, phone: str | None) -> dict[str, str]:
    return {k: v for k, v in (("name", name), ("phone", phone)) if v is not None}
