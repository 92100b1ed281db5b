"""The Prometheus configuration and rules (infra/compose/prometheus/): promtool accepts them
and their unit tests pass; the scrape targets are the process table's; every metric a rule
names is one some process exports; and a real Prometheus server, scraping a running system,
fires the candidate's error alert when the candidate fails, and not before.

promtool and prometheus come from the Debian `prometheus` package (infra/servers.sh installs
it): without them these tests skip, and fail under SHOP_TEST_REQUIRE_SERVERS=1 (CI)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from infra.extractions import MEMBERS
from infra.processes import PROCESSES
from infra.prometheus import (
    COMPOSE_CONFIG,
    PROMETHEUS_DIR,
    RULES_DIR,
    compose_config,
    compose_targets,
    local_config,
)
from infra.supervisor import Supervisor, free_port
from tests.test_docs_metrics import exported

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
COMPOSE_FILE = ROOT / "infra" / "compose" / "docker-compose.yml"
# A metric name in a PromQL expression; recording rules' names carry colons.
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def binary_or_skip(path: str) -> str:
    if not Path(path).exists():
        message = f"{path} is not installed (apt-get install prometheus)"
        if os.environ.get("SHOP_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary_or_skip(PROMTOOL), *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted(RULES_DIR.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_promtool_accepts_the_compose_config_and_its_rule_files():
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 2 rule files found" in checked.stdout


def test_promtool_accepts_the_rules():
    files = [str(p.relative_to(PROMETHEUS_DIR)) for p in sorted(RULES_DIR.glob("*.yml"))]
    checked = promtool("check", "rules", *files)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_unit_tests_pass_and_cover_every_alert():
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    ran = promtool("test", "rules", *(str(p.relative_to(PROMETHEUS_DIR)) for p in tests))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.count("SUCCESS") == len(tests)
    firing, silent = set(), set()
    for path in tests:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else silent).add(check["alertname"])
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert firing == alerts, "an alert without a test that fires it"
    assert silent == alerts, "an alert without a test where it does not fire"


def test_every_alert_waits_has_a_severity_and_says_what_to_do():
    for rule in (r for r in rules() if "alert" in r):
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        anchor = annotations["runbook"].removeprefix("docs/monitoring.md#")
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert f"### {rule['alert']}" in (ROOT / "docs" / "monitoring.md").read_text()


def test_every_metric_a_rule_names_is_exported_by_some_process():
    recorded = {r["record"] for r in rules() if "record" in r}
    named = {
        token
        for rule in rules()
        # label values and matchers are in quotes or braces, not metric names
        for token in NAME.findall(re.sub(r'"[^"]*"|\{[^}]*\}', "", rule["expr"]))
    }
    metrics = {n for n in named if n.startswith("shop_")}
    assert "shop_gateway_requests_total" in metrics and "shop_ready" in metrics  # the scan
    assert metrics - exported() == set()
    assert {n for n in named if ":" in n} <= recorded  # no alert reads an unrecorded series


def test_the_compose_scrape_targets_are_the_process_table():
    assert COMPOSE_CONFIG.read_text() == compose_config(), (
        "regenerate: python -m infra.prometheus --compose --out " + str(COMPOSE_CONFIG)
    )
    config = yaml.safe_load(COMPOSE_CONFIG.read_text())
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert jobs == {name: [f"{name}:{spec.port()}"] for name, spec in PROCESSES.items()}
    assert jobs == {name: [target] for name, target in compose_targets().items()}
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    assert set(jobs) <= set(services)


# --- a real Prometheus against a running system -------------------------------------------

TOKEN = "prometheus-test-admin-token"
RUNNING = ("monolith", "member-service", "gateway")
SHORT_FOR = "3s"


@dataclass
class System:
    supervisor: Supervisor
    ports: dict[str, int]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: free_port() for name in PROCESSES}


@pytest.fixture
def system(ports: dict[str, int], tmp_path: Path) -> Iterator[System]:
    """The dev broker, the monolith, the member service and the gateway as `shop run`
    processes on free ports, the way `shop up` starts them."""
    env = {
        "SHOP_DATA_DIR": str(tmp_path),
        "SHOP_ADMIN_TOKEN": TOKEN,
        "SHOP_BROKER_PORT": str(free_port()),
        **{spec.port_env: str(ports[name]) for name, spec in PROCESSES.items()},
    }
    env[MEMBERS.service.settings.variable("grpc_port")] = str(free_port())
    env.pop("SHOP_KAFKA_BOOTSTRAP", None)
    supervisor = Supervisor(env, tmp_path / "logs")
    try:
        supervisor.start_broker(int(env["SHOP_BROKER_PORT"]), tmp_path / "broker")
        supervisor.wait_ready()
        supervisor.start_in_order({name: ports[name] for name in RUNNING})
        yield System(supervisor, ports)
    finally:
        codes = supervisor.stop()
    assert all(code == 0 for code in codes.values()), codes


@pytest.fixture
def prometheus(ports: dict[str, int], tmp_path: Path) -> Iterator[str]:
    """/usr/bin/prometheus scraping the processes' ports every second (started first: it
    scrapes nothing until they are up), with the repository's rules, their `for:` shortened to
    SHORT_FOR in a copy made for this run."""
    binary = binary_or_skip(PROMETHEUS)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for path in RULES_DIR.glob("*.yml"):
        text = re.sub(r"(?m)^(\s+for:) \S+$", rf"\1 {SHORT_FOR}", path.read_text())
        (rules_dir / path.name).write_text(text)
    config = tmp_path / "prometheus.yml"
    running = {name: PROCESSES[name] for name in RUNNING}
    config.write_text(
        local_config(
            ports,
            rules_dir,
            running,
            scrape_interval="1s",
            evaluation_interval="1s",
        )
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        until(lambda: _answers(f"{url}/-/ready"), within=20, what="Prometheus ready")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def until(condition, *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:g}s: {what}")
        time.sleep(0.25)


class Browsing:
    """Anonymous visitors asking for their profile through the gateway, each with a new
    session (no cookie kept), so the members route spreads them by its weights. Both backends
    answer 401: not an error, but a request the rules count."""

    def __init__(self, gateway: str) -> None:
        self.http = httpx.Client(base_url=gateway, timeout=5)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.005):
            with contextlib.suppress(httpx.HTTPError):
                self.http.get("/api/members/me")
            self.http.cookies.clear()

    def __enter__(self) -> Browsing:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.http.close()


def alerts(prometheus: str, name: str) -> list[dict[str, Any]]:
    found = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [a for a in found if a["labels"]["alertname"] == name]


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5).json()
    return answer["data"]["result"]


def set_weights(system: System, *weights: str) -> None:
    admin = ("--url", system.url("gateway"), "--token", TOKEN)
    subprocess.run(
        [sys.executable, "-m", "infra", "routes", "set", "members", *weights, *admin],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_real_prometheus_fires_the_candidate_alert_when_the_candidate_fails(
    prometheus: str, system: System
):
    set_weights(system, "monolith=1", "member-service=1")
    with Browsing(system.url("gateway")):
        # Both sides over the 100 requests a minute the comparison needs: the alert is armed.
        armed = 'route_backend:gateway_requests:rate1m{route="members"} * 60 >= 100'
        until(lambda: len(query(prometheus, armed)) == 2, within=30, what="traffic on both")
        time.sleep(4)  # longer than SHORT_FOR, at one evaluation a second
        assert alerts(prometheus, "ShopCandidateErrorRate") == []  # healthy: not even pending
        assert query(prometheus, 'route_backend:gateway_error_ratio:rate1m{route="members"}')

        child = system.supervisor.children["member-service"]
        child.process.send_signal(signal.SIGTERM)  # the candidate goes away under traffic
        assert child.process.wait(timeout=30) == 0

        def firing() -> bool:
            return any(a["state"] == "firing" for a in alerts(prometheus, "ShopCandidateErrorRate"))

        until(firing, within=30, what="ShopCandidateErrorRate firing")
    (alert,) = alerts(prometheus, "ShopCandidateErrorRate")
    assert alert["labels"] == {
        "alertname": "ShopCandidateErrorRate",
        "route": "members",
        "backend": "member-service",
        "severity": "critical",
    }
    assert "member-service fails" in alert["annotations"]["summary"]
    until(
        lambda: any(a["state"] == "firing" for a in alerts(prometheus, "ShopProcessDown")),
        within=15,
        what="ShopProcessDown firing for the stopped member service",
    )
    (down,) = alerts(prometheus, "ShopProcessDown")
    assert down["labels"]["job"] == "member-service"
