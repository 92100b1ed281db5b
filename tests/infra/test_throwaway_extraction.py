"""An extraction that exists only in this file, declared as configuration: one small table,
its service built from the generic parts alone (libs/extraction: data modes, admin route,
start-up checks, batch sync), its stages derived from the declaration. The stage engine walks
it shared -> ramp -> dual -> single and all the way back through a real gateway under
continuous writes; at every stage each acknowledged write is where the stage says, and the
two DBs agree wherever both are live."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from gateway.app import create_app as create_gateway
from infra.extractions import Extraction, Service, by_name
from infra.processes import processes_of
from infra.settings import DEV_ADMIN_TOKEN, GatewaySettings, ServiceSettings
from infra.stages import Endpoints, RampOptions, StageEngine, stages_of, writes_held_by
from infra.supervisor import free_port
from libs.db import make_engine
from libs.db.types import ID
from libs.dualwrite import MigrationSpec, TableSpec, install_change_capture, install_sync_cursor
from libs.dualwrite.reconcile import Reconciler
from libs.dualwrite.twophase import install_decision_log
from libs.extraction import ExtractionData, create_extraction_app
from libs.response import ApiError, ok
from libs.service import ServiceOptions, create_service_app
from tests.support.servers import serving

pytestmark = pytest.mark.usefixtures("two_phase")  # dual write on PostgreSQL prepares

# --- the declaration: everything below the tables is configuration or generic parts ---


def notes_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "notes",
        metadata,
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("body", sa.String(200), nullable=False),
    )


LEGACY, NEW = sa.MetaData(), sa.MetaData()
NOTES_SPEC = MigrationSpec("notes", (TableSpec(notes_table(LEGACY), notes_table(NEW)),))
NotesSettings = ServiceSettings.declare("notes", port=0)

NOTES = Extraction(
    name="notes",
    service=Service(
        "notes-service",
        "tests.infra.test_throwaway_extraction:create_notes_service",
        NotesSettings,
        "notes DB: notes",
    ),
    spec="tests.infra.test_throwaway_extraction:NOTES_SPEC",
    routes={"notes": "/api/notes"},
    ramp=(50, 100),
)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    body: str = Field(min_length=1, max_length=200)


def notes_router(write) -> APIRouter:
    """The one route both sides serve: the legacy app writes its table directly, the service
    through the data mode's writer."""
    router = APIRouter()

    @router.post("/api/notes")
    def create(note: NoteIn, request: Request):
        return ok({"id": write(request, note.body)}, status=201)

    return router


def _service_write(request: Request, body: str) -> int:
    data: ExtractionData = request.app.state.data
    with data.writing() as tx:
        created = tx.write("notes", lambda t: t.insert().values(body=body))
        key = created.inserted_primary_key
        assert key is not None
        return int(key[0])


def upgrade_notes_db(engine: sa.Engine) -> None:
    """The service's migrations: its table and the sync job's cursor."""
    with engine.begin() as conn:
        NEW.create_all(conn)
        install_sync_cursor(conn)


def create_notes_service(settings: ServiceSettings) -> FastAPI:
    config = NOTES.config(settings, upgrade_notes_db)
    return create_extraction_app(config, [notes_router(_service_write)])


def legacy_app(engine: sa.Engine) -> FastAPI:
    """The monolith's side of the route: a plain write to the legacy table."""

    def write(_: Request, body: str) -> int:
        try:
            with engine.begin() as conn:
                created = conn.execute(LEGACY.tables["notes"].insert().values(body=body))
        except sa.exc.DBAPIError as exc:  # the freeze trigger of single write
            raise ApiError(409, "FROZEN", str(exc.orig)) from exc
        key = created.inserted_primary_key
        assert key is not None
        return int(key[0])

    app = create_service_app(ServiceOptions("monolith"))
    app.include_router(notes_router(write))
    return app


# --- the walk ---


@dataclass
class Writers:
    """Clients writing notes through the gateway until stopped; every 201 is acknowledged."""

    url: str
    acked: dict[int, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    turns: list[threading.Lock] = field(default_factory=list)  # held while a write is out

    def start(self, count: int = 3) -> None:
        for number in range(count):
            self.turns.append(threading.Lock())
            thread = threading.Thread(target=self._run, args=(number,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, number: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            sent = 0
            while not self.stop.is_set():
                body = f"writer {number} note {sent}"
                sent += 1
                with self.turns[number]:
                    http.cookies.clear()  # each write a new visitor, placed by the weights
                    answer = http.post("/api/notes", json={"body": body})
                    if answer.status_code == 201:
                        self.acked[answer.json()["data"]["id"]] = body
                    else:
                        self.failures.append(f"{answer.status_code} {answer.text[:200]}")
                time.sleep(0.002)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No write in flight while the block looks at the DBs."""
        for turn in self.turns:
            turn.acquire()
        try:
            yield
        finally:
            for turn in self.turns:
                turn.release()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


def rows(engine: sa.Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT id, body FROM notes")).all())


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_urls(backend, request, tmp_path) -> tuple[str, str]:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'legacy.db'}", f"sqlite:///{tmp_path / 'notes.db'}"
    create = request.getfixturevalue("postgres_databases")
    return create(), create()


def test_the_declaration_alone_gives_the_stages_the_process_and_the_migration():
    stages = stages_of((NOTES,))
    assert [s.name for s in stages] == [
        "monolith",
        "notes shared DB",
        "notes ramp",
        "notes dual write",
        "notes single write",
    ]
    assert [step.describe() for step in stages[1].steps] == [
        "notes-service data mode: shared",
        "gateway route notes: monolith 90% : notes-service 10%",
    ]
    process = processes_of((NOTES,))["notes-service"]
    assert (process.port_env, process.stage) == ("SHOP_NOTES_PORT", 1)
    assert by_name((NOTES,))["notes"].migration() is NOTES_SPEC
    assert [writes_held_by(n, "notes", stages) for n in range(5)] == [
        ("legacy",),
        ("legacy",),
        ("legacy",),
        ("legacy", "new"),
        ("new",),
    ]


def test_a_throwaway_extraction_walks_every_stage_and_back_under_writes(db_urls, tmp_path):
    legacy_url, new_url = db_urls
    legacy = make_engine(legacy_url)
    with legacy.begin() as conn:  # what the monolith's migrations would install
        LEGACY.create_all(conn)
        install_change_capture(conn, NOTES_SPEC)
        install_decision_log(conn)
    stages = stages_of((NOTES,))
    processes = processes_of((NOTES,))
    settings = NotesSettings(
        data_dir=tmp_path, monolith_db_url=legacy_url, db_url=new_url, sync_interval=0.05
    )
    ports = {name: free_port() for name in ("monolith", "notes-service", "gateway")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    gateway_settings = GatewaySettings(
        data_dir=tmp_path,
        gateway_backends={"monolith": urls["monolith"], "notes-service": urls["notes-service"]},
    )
    ramp = RampOptions(
        interval_seconds=0.5,
        min_requests=5,
        p99_ratio=20.0,
        p99_slack_ms=2000.0,
        max_wait_intervals=20,
        timeout_seconds=60.0,
    )
    seen: list[tuple[int, list[str]]] = []
    said: list[str] = []
    with ExitStack() as stack:
        stack.enter_context(serving(legacy_app(legacy), ports["monolith"]))
        service = processes["notes-service"].build(settings)
        stack.enter_context(serving(service, ports["notes-service"]))
        stack.enter_context(serving(create_gateway(gateway_settings, (NOTES,)), ports["gateway"]))
        engine = StageEngine(Endpoints(urls, DEV_ADMIN_TOKEN), ramp, say=said.append, stages=stages)
        stack.callback(engine.close)
        new = service.state.data.writer.new
        writers = Writers(urls["gateway"])
        writers.start()
        try:
            for target in [1, 2, 3, 4, 3, 2, 1, 0]:
                time.sleep(0.5)  # writes land in the stage before the move too
                assert engine.apply(target) == target
                time.sleep(0.5)
                with writers.paused():
                    seen.append((target, check(target, stages, writers.acked, legacy, new)))
        finally:
            writers.finish()
        assert engine.current() == 0
    legacy.dispose()
    assert writers.failures == []
    assert len(writers.acked) > 100
    assert seen == [(n, []) for n in [1, 2, 3, 4, 3, 2, 1, 0]]
    ramped = [line.split() for line in said if line.strip().startswith("ramp")]
    outcomes = [(words[1], words[2]) for words in ramped]  # a window may be inconclusive
    assert ("50%", "pass") in outcomes and outcomes[-1] == ("100%", "pass")


def check(number, stages, acked: dict[int, str], legacy: sa.Engine, new: sa.Engine) -> list[str]:
    """What is wrong at stage `number`: an acknowledged write missing where the stage keeps
    them, or the two DBs disagreeing while both are live."""
    problems = []
    held = writes_held_by(number, "notes", stages)
    dbs = {"legacy": legacy, "new": new}
    for name in held:
        found = rows(dbs[name])
        lost = {k: v for k, v in acked.items() if found.get(k) != v}
        if lost:
            problems.append(f"{name} DB lacks {len(lost)} acknowledged notes")
    if held != ("new",) and number > 0:
        reconciler = Reconciler(NOTES_SPEC, legacy, new)
        deadline = time.monotonic() + 15
        report = reconciler.check()
        while report.has_drift and held == ("legacy",) and time.monotonic() < deadline:
            time.sleep(0.1)  # shared: the copy trails by the sync lag, and must converge
            report = reconciler.check()
        if report.has_drift:
            problems.append(report.render())
    return problems
