"""Every metric the docs (and the stage table's "watch" lines) tell a reader to look at is one
some process exports, under the name Prometheus shows: a counter with its `_total`, a
histogram by its family name or a series of it. A renamed or removed metric cannot leave a
page pointing at nothing (or, later, a dashboard blank)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from infra.stages import STAGES

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("monolith", "services", "gateway", "libs", "infra", "read_model")
# `shop_` names in the docs that are not metrics.
NOT_METRICS = {"shop_sid"}  # the gateway's sticky-session cookie
NAME = re.compile(r"\bshop_[a-z0-9_]+\*?")  # `shop_http_*` names a family prefix


def exported() -> set[str]:
    """The names each metric family defined in the product's code is scraped as."""
    names: set[str] = set()
    for path in (p for top in PRODUCT for p in (ROOT / top).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            kind = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if kind not in {"Counter", "Gauge", "Histogram", "Summary", "gauge"} or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and str(first.value).startswith("shop_")):
                continue
            name = first.value
            if kind == "Counter":
                base = name.removesuffix("_total")
                names |= {f"{base}_total", f"{base}_created"}
            elif kind in ("Histogram", "Summary"):
                names |= {name, *(name + s for s in ("_bucket", "_sum", "_count", "_created"))}
            else:
                names.add(name)
    return names


def named(text: str) -> set[str]:
    return {m.group(0) for m in NAME.finditer(text)} - NOT_METRICS


def test_every_metric_the_docs_name_is_exported_under_that_name():
    names = exported()
    assert "shop_outbox_backlog" in names and "shop_points_debits_total" in names  # the scan
    pages = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
    missing = {}
    for page in pages:
        for name in named(page.read_text()):
            prefix = name.endswith("*")
            if (prefix and not any(n.startswith(name[:-1]) for n in names)) or (
                not prefix and name not in names
            ):
                missing.setdefault(name, []).append(str(page.relative_to(ROOT)))
    for stage in STAGES:
        for name in named(stage.watch):
            if name not in names:
                missing.setdefault(name, []).append(f"infra/stages.py stage {stage.number}")
    assert missing == {}
