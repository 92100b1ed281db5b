"""The member service on a real socket (HTTP and gRPC), over a legacy DB migrated by the
monolith's own migrations and a member DB of its own, on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from infra.extractions import MEMBERS
from infra.settings import DEV_ADMIN_TOKEN
from infra.supervisor import free_port
from libs.db import make_engine
from libs.extraction import ExtractionData
from monolith.adapters.migrate import upgrade as upgrade_legacy
from monolith.service_layer.features import Features
from services.member.entrypoints.app import create_app
from tests.support.brokers import NO_BROKER
from tests.support.servers import serving
from tests.support.settings import Environment

PASSWORD = "password-123"
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}


@dataclass
class MemberService:
    http: httpx.Client
    data: ExtractionData
    grpc_target: str

    @property
    def legacy(self) -> sa.Engine:
        return self.data.writer.legacy

    @property
    def new(self) -> sa.Engine:
        return self.data.writer.new

    def signup(self, name: str = "Kim") -> tuple[str, int]:
        """Sign a new member up; returns (email, member id)."""
        email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": PASSWORD, "name": name}
        created = self.http.post("/api/members", json=body)
        assert created.status_code == 201, created.text
        return email, created.json()["data"]["id"]

    def token(self, email: str) -> str:
        login = self.http.post("/api/members/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return login.json()["data"]["token"]

    def switch(self, mode: str) -> httpx.Response:
        return self.http.put("/admin/data-mode", json={"mode": mode}, headers=ADMIN)

    def move(self, mode: str) -> httpx.Response:
        """Switch forward the way the stage engine does: the monolith's member features set
        for that mode first (where it keeps them, the legacy DB; no monolith runs here)."""
        Features(self.legacy).change(dict(staged_features(mode)))
        return self.switch(mode)


def staged_features(mode: str) -> list[tuple[str, str]]:
    """The monolith's member features as the stage walk has them when the data is in `mode`."""
    phases = {"shared": (), "dual": ("dual",), "single": ("dual", "single")}[mode]
    return [feature for phase in phases for feature in MEMBERS.features.get(phase, ())]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def emails(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT email FROM members")).scalars())


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_urls(backend: str, request, tmp_path) -> tuple[str, str]:
    """(legacy DB URL, member DB URL), the legacy DB migrated as the monolith migrates it."""
    if backend == "sqlite":
        urls = (f"sqlite:///{tmp_path / 'legacy.db'}", f"sqlite:///{tmp_path / 'member.db'}")
    else:
        create = request.getfixturevalue("postgres_databases")
        urls = (create(), create())
    engine = make_engine(urls[0])
    upgrade_legacy(engine)
    engine.dispose()
    return urls


@pytest.fixture
def settings_for(db_urls, tmp_path) -> Callable[..., Environment]:
    def build(mode: str = "shared", **overrides) -> Environment:
        grpc_port = overrides.pop("grpc_port", None) or free_port()
        values = {
            "data_dir": tmp_path,
            "monolith_db_url": db_urls[0],
            "db_url": db_urls[1],
            "data_mode": mode,
            "grpc_port": grpc_port,
            "monolith_member_grpc": f"127.0.0.1:{grpc_port}",
            "sync_interval": 0.05,
            "kafka_bootstrap": NO_BROKER,
        }
        return Environment(**(values | overrides))

    return build


@contextmanager
def running(settings: Environment) -> Iterator[MemberService]:
    app = create_app(settings)
    with ExitStack() as stack:
        url = stack.enter_context(serving(app))
        http = stack.enter_context(httpx.Client(base_url=url, timeout=15))
        target = settings.grpc_target
        yield MemberService(http, app.state.data, target)


@pytest.fixture
def member_service(settings_for) -> Callable[..., Iterator[MemberService]]:
    """`with member_service("dual") as service:` starts the service in that data mode."""
    return lambda mode="shared", **overrides: running(settings_for(mode, **overrides))
