"""The Compose Specification's JSON schema, which tests/infra/test_compose.py validates
infra/compose/docker-compose.yml against. It is not kept in this repository: it is read from
the compose-go module (the loader `docker compose` itself is built on) as the Go module proxy
serves it, once, into a cache outside the repo (~/.cache/shop/, like infra/servers.sh's
FerretDB), so the check follows one pinned release of the specification.

    .venv/bin/python infra/compose/fetch_schema.py    # prints the cached schema's path"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import httpx

MODULE = "github.com/compose-spec/compose-go/v2"
VERSION = "v2.17.0"
MEMBER = f"{MODULE}@{VERSION}/schema/compose-spec.json"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shop"


def schema_path() -> Path:
    return cache_dir() / f"compose-spec-{VERSION}.json"


def module_url() -> str:
    """From GOPROXY's first proxy when it names one (a mirror), else proxy.golang.org."""
    first = os.environ.get("GOPROXY", "").split(",")[0].strip().rstrip("/")
    proxy = first if first.startswith("https://") else "https://proxy.golang.org"
    return f"{proxy}/{MODULE}/@v/{VERSION}.zip"


def fetch(timeout: float = 60.0) -> Path:
    """The cached schema's path, downloading the module zip first if it is not cached yet.
    The file appears whole or not at all (written aside, then renamed)."""
    target = schema_path()
    if target.exists():
        return target
    answer = httpx.get(module_url(), timeout=timeout, follow_redirects=True)
    answer.raise_for_status()
    with zipfile.ZipFile(io.BytesIO(answer.content)) as module:
        schema = module.read(MEMBER)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as part:
        part.write(schema)
    os.chmod(part.name, 0o644)
    Path(part.name).replace(target)
    return target


if __name__ == "__main__":
    try:
        print(fetch())
    except (httpx.HTTPError, KeyError, zipfile.BadZipFile) as exc:
        sys.exit(f"could not fetch the Compose Specification's schema from {module_url()}: {exc}")
