"""One client for the admin APIs of every process, used by the stage engine and by
`shop routes|ramp|shadow`: each call carries the admin token, a connect and a total timeout,
and reads the envelope; an error envelope raises ServiceError, a process that does not answer
raises AdminUnreachable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from libs.response import parse_envelope

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=2.0)


class AdminUnreachable(RuntimeError):
    """The process did not answer (down, wrong address, timed out)."""


class AdminClient:
    def __init__(
        self, urls: Mapping[str, str], token: str, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT
    ) -> None:
        self.urls = dict(urls)
        self.http = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def call(self, process: str, method: str, path: str, body: Any = None) -> Any:
        if process not in self.urls:  # a process this system does not run (yet)
            raise AdminUnreachable(f"{process}: no address known")
        url = f"{self.urls[process]}{path}"
        try:
            return parse_envelope(self.http.request(method, url, json=body))
        except httpx.HTTPError as exc:
            raise AdminUnreachable(f"{process} at {url}: {exc!r}") from exc

    def ready(self, process: str) -> bool:
        if process not in self.urls:
            return False
        try:
            return self.http.get(f"{self.urls[process]}/health/ready").status_code == 200
        except httpx.HTTPError:
            return False

    # The gateway's route table: read it to edit it, write it back under its version.

    def route_table(self) -> dict[str, Any]:
        """The table as the gateway serves it, without the derived `share_percent`, ready to
        be edited and written back."""
        table = self.call("gateway", "GET", "/admin/routes")
        for route in table["routes"]:
            route.pop("share_percent", None)
        return table

    def put_route_table(self, table: Mapping[str, Any], reason: str) -> Any:
        """Refused (409) if someone changed the table since it was read: its version."""
        body = {"routes": table["routes"], "version": table["version"], "reason": reason}
        return self.call("gateway", "PUT", "/admin/routes", body)
