"""Schemathesis against every process of a real system, over HTTP: the dev broker and the six
processes as `shop run` children (the supervisor `shop up` uses, on an isolated data dir and
free ports), every database on PostgreSQL (the stricter store: a NUL byte or a number past
BIGINT that SQLite keeps is an error there, the 500s issue 15 found). Each process is fuzzed
from its own /openapi.json (libs/openapi.py), with a real member's token and the admin token
supplied where the document asks for them; the gateway twice, its own API from its document
and its edge with the monolith's public operations sent through it.

Every operation gets a fixed number of valid cases and of invalid ones (Hypothesis
derandomized, so a run is the same run in CI), each answer checked: no 5xx, a status the
document lists, its content type, its schema (the envelope) and its required headers. A
failure is collected, not raised, so one run reports every finding with the curl command
that reproduces it; the cases found this way became regression tests (docs/reliability.md,
Fuzzing).

SHOP_FUZZ_EXAMPLES sets the cases per operation and mode (default 10) for a longer run."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import make_url

from infra.demo.run import isolated_env
from infra.extractions import EXTRACTIONS
from infra.processes import PROCESSES
from infra.settings import SharedSettings, load_settings
from infra.supervisor import Supervisor
from libs.openapi import ADMIN_TOKEN, MEMBER_TOKEN

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(420)]

EXAMPLES = int(os.environ.get("SHOP_FUZZ_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# The gateway fuzzed last: its admin API reads the others' (GET /admin/migration). Its edge,
# the proxied public paths, has no document of its own: the monolith's /api operations are
# sent through it (stage 0 routes them all to the monolith), its own failures must not show.
ORDER = ["monolith", "member-service", "order-service", "payment-service", "read-model", "gateway"]
EDGE = "gateway-edge"
REQUEST_TIMEOUT_SECONDS = 15.0


@dataclass
class System:
    urls: dict[str, str]
    tokens: dict[str, str]  # security scheme -> bearer token
    logs: Path


@dataclass
class Tally:
    operations: int = 0
    cases: int = 0
    server_errors: int = 0
    findings: list[str] = field(default_factory=list)


# Each process's database variable: the monolith's legacy DB, each service's, the read model's.
DB_VARIABLES = [
    "SHOP_MONOLITH_DB_URL",
    "SHOP_READ_MODEL_DB_URL",
    *(e.service.settings.variable("db_url") for e in EXTRACTIONS),
]


@pytest.fixture(scope="module")
def databases(postgres_admin_url: str) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database per process, dropped afterwards."""
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    base = make_url(postgres_admin_url)
    names = {variable: f"shop_fuzz_{uuid.uuid4().hex[:12]}" for variable in DB_VARIABLES}
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield {
            variable: base.set(database=name).render_as_string(hide_password=False)
            for variable, name in names.items()
        }
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def system(tmp_path_factory, databases: dict[str, str]) -> Iterator[System]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    env, ports = isolated_env(data_dir)
    env.update(databases)
    # Its own dev broker, whatever Kafka the environment names.
    env["SHOP_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{env['SHOP_BROKER_PORT']}"
    supervisor = Supervisor(env, data_dir / "logs")
    try:
        supervisor.start_broker(int(env["SHOP_BROKER_PORT"]), data_dir / "broker")
        supervisor.wait_ready()
        supervisor.start_in_order({name: ports[name] for name in PROCESSES})
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        admin = load_settings(SharedSettings).admin_token
        tokens = {MEMBER_TOKEN: _member_token(urls["monolith"]), ADMIN_TOKEN: admin}
        yield System(urls, tokens, data_dir / "logs")
    finally:
        codes = supervisor.stop()
    assert all(code == 0 for code in codes.values()), codes


def _member_token(monolith: str) -> str:
    """A real member's token, from the monolith's signup and login (the monolith serves
    members at stage 0; every process accepts its tokens)."""
    body = {"email": f"fuzz-{uuid.uuid4().hex[:8]}@example.com", "password": "fuzz-pass-1"}
    with httpx.Client(base_url=monolith, timeout=15) as http:
        assert http.post("/api/members", json=body | {"name": "Fuzz"}).status_code == 201
        login = http.post("/api/members/login", json=body)
        assert login.status_code == 200, login.text
        return login.json()["data"]["token"]


@pytest.mark.parametrize("name", [*ORDER, EDGE])
def test_fuzz(system: System, name: str):
    edge = name == EDGE
    url = system.urls["gateway" if edge else name]
    schema = schemathesis.openapi.from_url(
        f"{system.urls['monolith' if edge else name]}/openapi.json"
    )
    tally = Tally()
    started = time.monotonic()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"{name}'s document has an invalid operation: {result}"
        operation = result.ok()
        if edge and not operation.path.startswith("/api/"):
            continue
        tally.operations += 1
        headers = _auth(operation.definition.raw, system.tokens)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, url, headers, tally)
    seconds = time.monotonic() - started
    print(
        f"\n{name}: {tally.operations} operations, {tally.cases} cases, "
        f"{tally.server_errors} 5xx, {len(tally.findings)} findings, {seconds:.1f} s"
    )
    assert not tally.findings, "\n\n".join(tally.findings[:20])


def _auth(definition: dict[str, Any], tokens: dict[str, str]) -> dict[str, str]:
    for requirement in definition.get("security", []):
        for scheme in requirement:
            return {"Authorization": f"Bearer {tokens[scheme]}"}
    return {}


def _fuzz(operation, mode: GenerationMode, url: str, headers: dict[str, str], tally: Tally):
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=timedelta(seconds=REQUEST_TIMEOUT_SECONDS),
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        tally.cases += 1
        # A generated Authorization header would replace the token: the scheme's is sent.
        response = case.call(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)
        if response.status_code >= 500:
            tally.server_errors += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, BaseExceptionGroup) as failure:
            curl = case.as_curl_command(headers=headers, base_url=url)
            tally.findings.append(
                f"{operation.label} ({mode.value}) -> {response.status_code}: "
                f"{str(failure)[:600]}\n{curl}\n{response.text[:300]}"
            )

    try:
        run()
    except Unsatisfiable:
        # Nothing to make invalid (no parameters, no body): no negative case exists.
        assert mode is GenerationMode.NEGATIVE, operation.label
