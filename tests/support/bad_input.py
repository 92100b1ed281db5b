"""One runner for the bad-input tables of the extracted services: each case is (route, method,
path, request options, expected status, expected code); admin paths carry the admin token
unless the case's "admin" option says otherwise, the others the member's token unless its
"auth" option is false. Returns what answered otherwise, or without the envelope or the
service's X-Served-By."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx

from infra.settings import DEV_ADMIN_TOKEN
from libs.response import is_valid_envelope

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
Case = tuple[str | None, str, str, dict[str, Any], int, str]


def misanswered(http: httpx.Client, cases: Iterable[Case], token: str, served_by: str) -> list[str]:
    failures = []
    for _, method, path, options, status, code in cases:
        options = dict(options)
        headers = {**options.pop("headers", {})}
        admin = options.pop("admin", ADMIN)
        if path.startswith("/admin"):
            headers |= admin or {}
        elif options.pop("auth", True):
            headers |= {"Authorization": f"Bearer {token}"}
        reply = http.request(method, path, headers=headers, **options)
        body = reply.json()
        got = (reply.status_code, (body.get("error") or {}).get("code"))
        if got != (status, code) or not is_valid_envelope(body):
            failures.append(
                f"{served_by} {method} {path}: expected {status} {code}, got {json.dumps(body)}"
            )
        elif reply.headers.get("X-Served-By") != served_by:
            failures.append(f"{served_by} {method} {path}: missing X-Served-By")
    return failures
