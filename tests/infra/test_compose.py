"""infra/compose/ without Docker: the compose file is valid against the Compose
Specification's JSON schema, and everything it names exists in the project. Every shop
process has a service that runs it from the one image; each service's SHOP_ variables are
settings of the process it runs, and the settings they make validate as the container would
load them; the ports published are the processes' configured ports; every image is pinned;
no secret is written in the file and every variable it reads is documented in .env.example;
and Grafana's dashboards name only the provisioned datasource and metrics some process
exports, so a renamed metric cannot leave a panel blank.

The schema is not kept in the repository: infra/compose/fetch_schema.py reads it from the
Go module proxy into ~/.cache/shop/ once. Where the proxy cannot be reached the schema test
skips with the reason, except under SHOP_TEST_REQUIRE_SERVERS=1 (CI), where it fails."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import secrets
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
import pytest
import yaml

from infra.compose import fetch_schema
from infra.extractions import EXTRACTIONS
from infra.kafka.runtime import KAFKA_VERSION
from infra.processes import PROCESSES
from infra.settings import SharedSettings
from tests.test_docs_metrics import exported

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "infra" / "compose"
COMPOSE = HERE / "docker-compose.yml"
DOCKERFILE = HERE / "Dockerfile"
ENV_EXAMPLE = HERE / ".env.example"
GRAFANA = HERE / "grafana"
SHOP_IMAGE = "strangler-shop"
NETWORK_HOLDER = "shop-network"
# ${VAR}, ${VAR:?message}, ${VAR?message}, ${VAR:-default}, ${VAR-default}; $$ is a literal $.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[?-])([^}]*))?\}")
BARE_VARIABLE = re.compile(r"(?<!\$)\$[A-Za-z_]")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH", re.IGNORECASE)
METRIC = re.compile(r"\bshop_[a-z0-9_]+")


@functools.cache
def compose_text() -> str:
    return COMPOSE.read_text()


def compose() -> dict[str, Any]:
    """The file as docker compose reads it before interpolation (anchors and merge keys
    resolved); a fresh copy each time, so a test may change its own."""
    return copy.deepcopy(_parsed())


@functools.cache
def _parsed() -> dict[str, Any]:
    return yaml.safe_load(compose_text())


@functools.cache
def example_env() -> dict[str, str]:
    """.env.example's variables. An empty value (a secret the user must choose) gets a random
    one here, as long as .env.example asks for: what a filled-in .env holds."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            found[name.strip()] = value.strip()
    return found


@functools.cache
def filled_env() -> dict[str, str]:
    return {k: v or secrets.token_hex(24) for k, v in example_env().items()}


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of every string in `value`, from `env`."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        present = env.get(name)
        if kind in (":?", "?"):
            assert present or (kind == "?" and present is not None), f"{name}: {rest}"
            return present or ""
        if kind in (":-", "-"):
            return present if present or (kind == "-" and present is not None) else rest
        assert present is not None, f"{name} is not set"
        return present

    return VARIABLE.sub(one, value).replace("$$", "$")


def resolved() -> dict[str, Any]:
    return interpolate(compose(), filled_env())


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: str(v) for k, v in env.items()}


def shop_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run a shop process, by process name."""
    found = {}
    for name, service in doc["services"].items():
        command = service.get("command") or []
        if command[:2] == ["shop", "run"]:
            found[command[2]] = service | {"_name": name}
    return found


def env_names(settings: type[SharedSettings]) -> set[str]:
    """The variables a settings class reads: each field's alias, made from the SHOP_ prefix
    and the field's name (a service's fields carry its own prefix)."""
    return {str(info.validation_alias) for info in settings.model_fields.values()}


def published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """Container port -> (host address, host port), from the short syntax
    ("[address:]host_port:container_port")."""
    ports = {}
    for entry in service.get("ports", []):
        *address, host_port, target = str(entry).split(":")
        ports[int(target)] = ("".join(address), int(host_port))
    return ports


# --- the schema ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    try:
        path = fetch_schema.fetch()
    except httpx.HTTPError as exc:
        message = f"the Compose Specification's schema ({fetch_schema.module_url()}): {exc}"
        if os.environ.get("SHOP_TEST_REQUIRE_SERVERS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    schema = json.loads(path.read_text())
    kind = jsonschema.validators.validator_for(schema)  # the draft the schema declares
    kind.check_schema(schema)
    return kind(schema)


def test_the_compose_file_validates_against_the_compose_specification(validator):
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(resolved())
    ]
    assert errors == []
    # The schema is strict enough to catch a slip: a misspelt key, a wrong type, a bad
    # condition.
    for slip in (
        lambda doc: doc["services"]["monolith"].update(healthchek={"test": ["CMD", "true"]}),
        lambda doc: doc["services"]["kafka"].update(restart=["always"]),
        lambda doc: doc["services"]["gateway"]["depends_on"]["monolith"].update(condition="up"),
    ):
        doc = resolved()
        slip(doc)
        assert not validator.is_valid(doc)


# --- the shop processes -------------------------------------------------------------------


def test_every_process_has_a_service_that_runs_it_from_the_one_image():
    doc = compose()
    services = shop_services(doc)
    assert set(services) == set(PROCESSES)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    image = f"{SHOP_IMAGE}:{version}"
    for name, service in services.items():
        assert service["_name"] == name  # Prometheus scrapes <process>:<port>
        assert service["image"] == image, name
        assert service["build"] == {"context": "../..", "dockerfile": "infra/compose/Dockerfile"}
        # Listening on every address of the shared namespace, so the host and Prometheus
        # reach it; the processes still find each other at SHOP_HOST (127.0.0.1).
        assert service["command"] == ["shop", "run", name, "--host", "0.0.0.0"], name
        assert service["network_mode"] == f"service:{NETWORK_HOLDER}", name
        assert service.get("init") is True, name  # signals forwarded, children reaped
        assert "SHOP_HOST" not in environment(service), name
    holder = doc["services"][NETWORK_HOLDER]
    assert holder["image"] == image
    assert set(holder["networks"]["default"]["aliases"]) == set(PROCESSES)


def test_every_shop_variable_is_a_setting_of_the_process_that_reads_it():
    doc = compose()
    for name, service in shop_services(doc).items():
        names = env_names(PROCESSES[name].settings)
        unknown = {v for v in environment(service) if v.startswith("SHOP_")} - names
        assert unknown == set(), f"{name} reads no {sorted(unknown)}"
    # What the image itself sets is read by every process.
    baked = re.findall(r"\b(SHOP_[A-Z0-9_]+)=", DOCKERFILE.read_text())
    assert baked and set(baked) <= env_names(SharedSettings)
    # ...and a variable no process reads would be caught.
    assert "SHOP_MEMBER_DB_URL" not in env_names(PROCESSES["order-service"].settings)


def test_each_service_s_settings_validate_as_its_container_loads_them():
    """Production settings, filled in from .env.example: the guard against development
    secrets passes, the timeout budgets hold, and every server a setting points at is a
    service of the file."""
    doc = resolved()
    for name, service in shop_services(doc).items():
        env = environment(service)
        settings = PROCESSES[name].load(**env)
        assert settings.env == "production", name
        assert not settings.embedded_broker, name
        for variable, value in env.items():
            hosts = [urlsplit(value).hostname] if "://" in value else []
            if variable == "SHOP_KAFKA_BOOTSTRAP":
                hosts = [address.rpartition(":")[0] for address in value.split(",")]
            for host in hosts:
                assert host in doc["services"], f"{name} {variable}: no service {host}"
    assert PROCESSES["read-model"].load(**environment(doc["services"]["read-model"])).redis_url


def test_every_postgresql_a_dual_write_spans_allows_prepared_transactions():
    doc = resolved()
    for extraction in EXTRACTIONS:
        process = extraction.service.name
        settings = PROCESSES[process].load(**environment(doc["services"][process]))
        for url in (settings.legacy_db_url, settings.db):
            assert url.startswith("postgresql+psycopg://"), (process, url)
            server = doc["services"][urlsplit(url).hostname]
            assert server["image"].startswith("postgres:")
            allowed = re.search(r"max_prepared_transactions=(\d+)", " ".join(server["command"]))
            assert allowed and int(allowed[1]) > 0, (process, url)


def test_the_host_reaches_each_process_at_its_configured_port():
    """`shop stage apply N` from the host uses the registry's URLs (127.0.0.1:<port>), as
    against the embedded system."""
    doc = resolved()
    holder = doc["services"][NETWORK_HOLDER]
    ports = published(holder)
    for name, service in shop_services(doc).items():
        spec = PROCESSES[name]
        port = spec.port(spec.load(**environment(service)))
        assert ports.get(port) == ("127.0.0.1", port), name
        assert port == spec.port(spec.load())  # the embedded system's port, too
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/health/ready" in probe, name
    assert len(ports) == len(PROCESSES)  # nothing else published from the shop's namespace


def test_every_image_is_pinned_to_a_version():
    doc = compose()
    for name, service in doc["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.match(r"v?\d", tag), f"{name}: {image}"
    # The Kafka the compose system runs is the one the test suite runs against.
    assert doc["services"]["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"


def test_the_image_runs_unprivileged_and_every_service_is_health_checked():
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0", "0:0")
    assert any(line.startswith("CMD [") for line in final)  # exec form: shop gets SIGTERM
    doc = compose()
    for name, service in doc["services"].items():
        if name != NETWORK_HOLDER:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, rule in (service.get("depends_on") or {}).items():
            checked = "healthcheck" in doc["services"][dependency]
            wanted = "service_healthy" if checked else "service_started"
            assert rule["condition"] == wanted, f"{name} -> {dependency}"


# --- secrets and variables ----------------------------------------------------------------


def test_no_secret_is_written_in_the_file():
    doc = compose()
    for name, service in doc["services"].items():
        for variable, value in environment(service).items():
            if SECRET_NAME.search(variable):
                assert VARIABLE.fullmatch(value), f"{name} {variable} is written in the file"
    for text in strings(doc):
        for url in re.findall(r"[a-z+]+://[^\s\"']+", text):
            password = urlsplit(url.replace("${", "{").replace("}", "")).password
            if password is not None:
                assert "${" in url.split("@")[0], f"a password written in {url}"
        if "--requirepass" in text:
            assert re.search(r"--requirepass \"?\$\$", text)
    # The real secrets live in infra/compose/.env, which git never tracks.
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(HERE / ".env")], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0


def test_every_variable_the_file_reads_is_documented_in_the_example():
    text = compose_text()
    assert not BARE_VARIABLE.search(text)  # only ${VAR} forms, which the check below sees
    used = {m[0] for m in VARIABLE.findall(text)}
    assert used == set(example_env())  # each documented, and none documented for nothing
    for name, kind, _ in VARIABLE.findall(text):
        if SECRET_NAME.search(name):
            assert kind == ":?", f"${{{name}}} must refuse to start while empty"
    comments = ENV_EXAMPLE.read_text().split("\n")
    for name in used:
        at = next(i for i, line in enumerate(comments) if line.startswith(f"{name}="))
        assert comments[at - 1].startswith("#"), f"{name} has no comment in .env.example"
    with pytest.raises(AssertionError, match="SHOP_ADMIN_TOKEN"):
        interpolate(compose(), filled_env() | {"SHOP_ADMIN_TOKEN": ""})


# --- Grafana ------------------------------------------------------------------------------


@functools.cache
def datasource() -> dict[str, Any]:
    (path,) = (GRAFANA / "provisioning" / "datasources").glob("*.yml")
    (found,) = yaml.safe_load(path.read_text())["datasources"]
    return found


def dashboards() -> list[Path]:
    found = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert GRAFANA / "dashboards" / "migration-overview.json" in found
    return found


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_grafana_is_provisioned_with_the_compose_prometheus_and_the_dashboards():
    doc = compose()
    source = datasource()
    assert source["type"] == "prometheus" and source["uid"]
    url = urlsplit(source["url"])
    prometheus = doc["services"][url.hostname]
    assert prometheus["image"].startswith("prom/prometheus:")
    assert f"127.0.0.1:{url.port}:{url.port}" in prometheus["ports"]
    assert "./prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    scrape = yaml.safe_load((HERE / "prometheus" / "prometheus.yml").read_text())
    assert source["jsonData"]["timeInterval"] == scrape["global"]["scrape_interval"]
    (path,) = (GRAFANA / "provisioning" / "dashboards").glob("*.yml")
    (provider,) = yaml.safe_load(path.read_text())["providers"]
    mounts = dict(v.rsplit(":", 2)[:2] for v in doc["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_every_dashboard_panel_queries_the_provisioned_datasource():
    uid = datasource()["uid"]
    for path in dashboards():
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        queried, taken = 0, set()
        for panel in panels(dashboard):
            grid = panel["gridPos"]
            assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
            cells = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & taken, f"{panel['title']} overlaps another panel"
            taken |= cells
            if panel["type"] in ("row", "text"):
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid and target["expr"], panel["title"]
                queried += 1
        assert queried


def test_every_metric_a_dashboard_names_is_exported_by_some_process():
    names = exported()
    used: set[str] = set()
    for path in dashboards():
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                used |= set(METRIC.findall(target["expr"]))
    assert {"shop_gateway_requests_total", "shop_read_model_freshness_seconds_bucket"} <= used
    assert used - names == set()
