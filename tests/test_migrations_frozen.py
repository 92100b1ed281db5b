"""A migration is frozen: it runs the same way for as long as the revision exists, so it may
use the libraries' migration helpers but never a process's live code (a service's spec or
tables change with the service, and leave with it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIVE = ("monolith", "services", "gateway", "infra", "read_model")


def test_no_migration_imports_a_process_s_live_code():
    offending = {}
    versions = sorted(ROOT.glob("**/migrations/versions/*.py"))
    versions = [v for v in versions if ".venv" not in v.parts]
    assert len(versions) >= 6  # the monolith's and the member service's revisions
    for path in versions:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name.split(".")[0] in LIVE:
                    offending.setdefault(str(path.relative_to(ROOT)), []).append(name)
    assert offending == {}
