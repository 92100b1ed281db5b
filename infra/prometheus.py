"""Prometheus's scrape configuration, made from the process table (infra/processes.py), so the
targets cannot drift from the processes and ports the shop really runs.

One job per process, named after it (`job="gateway"`, `job="member-service"`, ...), whatever
address it answers on: the rules (infra/compose/prometheus/rules/) and the dashboards name
jobs, never addresses. Two renderings of the same table:

- compose: `<process name>:<port>`, the service names of infra/compose/docker-compose.yml;
  the committed infra/compose/prometheus/prometheus.yml is this output (a test compares).
- local: `127.0.0.1:<port>`, each process's port from its own settings (SHOP_*_PORT), for
  Prometheus beside a `shop up`: `python -m infra.prometheus --local --out FILE`.

The YAML is written by hand: the shape is fixed and small, and the product needs no YAML
library for it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from infra.processes import PROCESSES, ProcessSpec

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "infra" / "compose" / "prometheus"
COMPOSE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_DIR = PROMETHEUS_DIR / "rules"
# Relative to the configuration file: compose mounts infra/compose/prometheus as one directory.
COMPOSE_RULES = ("rules/*.yml",)
COMPOSE_HEADER = (
    "# Generated from infra/processes.py by `python -m infra.prometheus --compose`; do not edit\n"
    "# by hand (tests/infra/test_prometheus.py compares). docs/monitoring.md explains it.\n"
)
LOCAL_HEADER = (
    "# Prometheus beside `shop up`, from `python -m infra.prometheus --local` (the ports of\n"
    "# this shell's SHOP_*_PORT settings). docs/monitoring.md explains it.\n"
)


def compose_targets(processes: Mapping[str, ProcessSpec] = PROCESSES) -> dict[str, str]:
    """Each process at its compose service name (the process name) and configured port."""
    return {name: f"{name}:{spec.port()}" for name, spec in processes.items()}


def local_targets(
    ports: Mapping[str, int] | None = None, processes: Mapping[str, ProcessSpec] = PROCESSES
) -> dict[str, str]:
    """Each process on loopback, at `ports[name]` or else its configured port."""
    chosen = dict(ports or {})
    return {
        name: f"127.0.0.1:{chosen.get(name) or spec.port()}" for name, spec in processes.items()
    }


def render(
    targets: Mapping[str, str],
    rule_files: Sequence[str],
    *,
    header: str = COMPOSE_HEADER,
    scrape_interval: str = "5s",
    evaluation_interval: str = "5s",
) -> str:
    """prometheus.yml: global intervals, the rule files, one scrape job per process."""
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {evaluation_interval}",
        "",
        "rule_files:",
        *(f"  - {_quoted(path)}" for path in rule_files),
        "",
        "scrape_configs:",
    ]
    for job, target in targets.items():
        lines += [
            f"  - job_name: {_quoted(job)}",
            "    metrics_path: /metrics",
            "    static_configs:",
            f"      - targets: [{_quoted(target)}]",
        ]
    return header + "\n".join(lines) + "\n"


def _quoted(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


def compose_config() -> str:
    return render(compose_targets(), COMPOSE_RULES)


def local_config(
    ports: Mapping[str, int] | None = None,
    rules_dir: Path = RULES_DIR,
    processes: Mapping[str, ProcessSpec] = PROCESSES,
    **intervals: str,
) -> str:
    """For a Prometheus on this machine: the rules by absolute path, since the file is written
    wherever the caller likes (under SHOP_DATA_DIR, a temporary directory)."""
    rules = [str(rules_dir.resolve() / "*.yml")]
    return render(local_targets(ports, processes), rules, header=LOCAL_HEADER, **intervals)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.prometheus",
        description="Prometheus's scrape configuration for every process of the shop.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--local", action="store_true", help="targets 127.0.0.1:<port>")
    which.add_argument("--compose", action="store_true", help="targets <process>:<port>")
    parser.add_argument("--out", type=Path, help="write here instead of standard output")
    args = parser.parse_args(argv)
    text = local_config() if args.local else compose_config()
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
