"""One response format for every process: the envelope the talk asks teams to agree on first."""

from libs.response.client import (
    BadEnvelope,
    ServiceError,
    parse_envelope,
)
from libs.response.envelope import (
    REQUEST_ID_HEADER,
    SERVED_BY_HEADER,
    ApiError,
    envelope,
    error_body,
    is_valid_envelope,
)
from libs.response.server import install_envelope, ok

__all__ = [
    "REQUEST_ID_HEADER",
    "SERVED_BY_HEADER",
    "ApiError",
    "BadEnvelope",
    "ServiceError",
    "envelope",
    "error_body",
    "install_envelope",
    "is_valid_envelope",
    "ok",
    "parse_envelope",
]
