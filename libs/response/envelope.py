"""The envelope itself: plain data, no web framework, so clients and servers share it."""

from __future__ import annotations

import re
from typing import Any

REQUEST_ID_HEADER = "X-Request-Id"
SERVED_BY_HEADER = "X-Served-By"

_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class ApiError(Exception):
    """An error a handler raises on purpose; it becomes a 4xx/5xx envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def error_body(code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": list(details or [])}


def envelope(
    data: Any = None, *, error: dict[str, Any] | None = None, request_id: str = ""
) -> dict[str, Any]:
    return {
        "success": error is None,
        "data": None if error is not None else data,
        "error": error,
        "meta": {"request_id": request_id},
    }


def is_valid_envelope(body: Any) -> bool:
    """True when `body` has exactly the shape every response of every process must have."""
    if not isinstance(body, dict) or set(body) != {"success", "data", "error", "meta"}:
        return False
    meta, error = body["meta"], body["error"]
    if not isinstance(meta, dict) or not isinstance(meta.get("request_id"), str):
        return False
    if body["success"] is True:
        return error is None
    if body["success"] is not False or body["data"] is not None or not isinstance(error, dict):
        return False
    return (
        set(error) == {"code", "message", "details"}
        and isinstance(error["code"], str)
        and bool(_CODE.match(error["code"]))
        and isinstance(error["message"], str)
        and isinstance(error["details"], list)
    )
