"""The commit guard over real HTTP: a sync handler, in a process made by create_service_app,
dual writes (ATTACH on SQLite, two-phase commit on PostgreSQL) while its time limit fires.

- the limit fires before the commit: 504 TIMEOUT, and neither DB has the row, ever;
- the commit went first and the handler is slow afterwards: its real answer, late;
- a slow read commits nothing, so it still times out."""

from __future__ import annotations

import time

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter

from libs.dualwrite.modes import Mode, ModeSwitch
from libs.dualwrite.twophase import install_decision_log
from libs.dualwrite.writer import DualWriter
from libs.response import ok
from libs.service import ServiceOptions, create_service_app
from tests.libs.dualwrite.schema import member_values
from tests.support.servers import serving

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("two_phase")]

LIMIT = 0.5
LATE = 1.5  # how long a handler dawdles: well past the limit


@pytest.fixture
def served(migration):
    with migration.legacy.begin() as conn:
        install_decision_log(conn)
    writer = DualWriter(
        migration.spec, migration.legacy, migration.new, switch=ModeSwitch(Mode.DUAL)
    )
    router = APIRouter()

    @router.post("/late-commit")
    def late_commit(email: str):
        with writer.transaction() as tx:
            tx.write("members", lambda t: t.insert().values(member_values(email)))
            time.sleep(LATE)  # the limit fires here, before the commit
        return ok({"email": email}, status=201)

    @router.post("/late-answer")
    def late_answer(email: str):
        with writer.transaction() as tx:
            tx.write("members", lambda t: t.insert().values(member_values(email)))
        time.sleep(LATE)  # committed: the limit fires after it
        return ok({"email": email}, status=201)

    @router.get("/late-read")
    def late_read():
        with migration.legacy.begin() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM members")).scalar_one()
            time.sleep(LATE)
        return ok({"members": count})

    app = create_service_app(ServiceOptions("guarded", server_limit_seconds=LIMIT))
    app.include_router(router)
    try:
        with serving(app) as url, httpx.Client(base_url=url, timeout=5) as http:
            yield http
    finally:
        writer.close()


def _emails(migration, side: str) -> set[str]:
    return {row[1] for row in migration.rows(side)}


def test_a_504_leaves_both_dbs_without_the_write(migration, served):
    started = time.monotonic()
    answer = served.post("/late-commit", params={"email": "late@example.com"})
    assert answer.status_code == 504, answer.text
    assert answer.json()["error"]["code"] == "TIMEOUT"
    assert time.monotonic() - started < LATE  # the 504 did not wait for the handler
    time.sleep(LATE + 0.3)  # the handler's thread has tried its commit by now
    assert "late@example.com" not in _emails(migration, "legacy")
    assert "late@example.com" not in _emails(migration, "new")
    # The refused commit left no transaction open on a pooled connection.
    assert served.post("/late-answer", params={"email": "next@example.com"}).status_code == 201


def test_a_commit_before_the_limit_gets_its_real_answer(migration, served):
    started = time.monotonic()
    answer = served.post("/late-answer", params={"email": "slow@example.com"})
    assert answer.status_code == 201, answer.text
    assert time.monotonic() - started >= LATE
    assert "slow@example.com" in _emails(migration, "legacy")
    assert "slow@example.com" in _emails(migration, "new")


def test_a_slow_read_still_times_out(served):
    answer = served.get("/late-read")
    assert answer.status_code == 504, answer.text
