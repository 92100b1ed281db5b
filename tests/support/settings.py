"""One environment's settings as every process reads them (each picks its own fields), for the
tests that run the monolith, the gateway and the member service side by side in one process."""

from __future__ import annotations

from infra.extractions import MEMBERS
from infra.settings import Settings


class Environment(Settings, MEMBERS.service.settings):  # type: ignore[misc,valid-type]
    pass
