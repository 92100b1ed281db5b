"""What a handler gets besides the request body."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.devbroker.server import Broker


@dataclasses.dataclass(frozen=True, slots=True)
class RequestContext:
    broker: Broker
    api_version: int
    client_id: str
    client_host: str
