"""Client side of the envelope: one parser, typed errors, so callers never guess at shapes."""

from __future__ import annotations

from typing import Any

import httpx

from libs.response.envelope import SERVED_BY_HEADER, is_valid_envelope


class ServiceError(Exception):
    """A call answered with `success: false`; carries the callee's code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[Any] | None = None,
        served_by: str = "",
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.served_by = served_by


class BadEnvelope(ServiceError):
    """The callee answered something that is not an envelope: a contract breach."""


def parse_envelope(response: httpx.Response) -> Any:
    """Return `data` of a successful envelope, or raise ServiceError / BadEnvelope."""
    served_by = response.headers.get(SERVED_BY_HEADER, "")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not is_valid_envelope(body):
        raise BadEnvelope(
            response.status_code,
            "BAD_ENVELOPE",
            f"{served_by or 'the callee'} answered a body that is not an envelope",
            served_by=served_by,
        )
    if body["success"]:
        return body["data"]
    err = body["error"]
    raise ServiceError(response.status_code, err["code"], err["message"], err["details"], served_by)
