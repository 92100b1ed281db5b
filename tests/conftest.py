"""Shared fixtures. Tests that need PostgreSQL or Redis use the real servers named by
SHOP_TEST_POSTGRES_URL / SHOP_TEST_REDIS_URL (CI sets both); where a server is absent they
skip with the reason, except under SHOP_TEST_REQUIRE_SERVERS=1 (CI), where they fail."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from libs.dualwrite.twophase import prepared_transactions_allowed

# The two-broker fixtures (kafka_broker, bootstrap, producer, ...), for any test directory.
pytest_plugins = ["tests.support.kafka_fixtures"]

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _unavailable(what: str, why: Exception) -> None:
    message = f"{what} is not reachable: {why}"
    if os.environ.get("SHOP_TEST_REQUIRE_SERVERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get("SHOP_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def two_phase(request) -> None:
    """For a test that commits dual writes on PostgreSQL, by two-phase commit: the server must
    allow prepared transactions (.ci/run raises max_prepared_transactions). Only such tests
    ask for it; on SQLite (a `backend` parameter of "sqlite") it asks nothing."""
    if "backend" in request.fixturenames and request.getfixturevalue("backend") != "postgres":
        return
    engine = sa.create_engine(request.getfixturevalue("postgres_admin_url"))
    try:
        with engine.connect() as conn:
            allowed = prepared_transactions_allowed(conn)
    finally:
        engine.dispose()
    if allowed == 0:
        _unavailable(
            "PostgreSQL two-phase commit",
            RuntimeError("max_prepared_transactions = 0 (.ci/run raises it)"),
        )


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"shop_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_databases(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """Makes fresh databases on demand (a legacy DB and a new DB, say), dropped afterwards.

    Transactions left prepared in them (two-phase commit tests) are rolled back first:
    PostgreSQL refuses to drop a database that a prepared transaction still holds."""
    created: list[str] = []
    base = make_url(postgres_admin_url)

    def create() -> str:
        name = f"shop_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    admin = sa.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    try:
        yield create
    finally:
        for name in created:
            _drop_database(admin, base.set(database=name), name)
        admin.dispose()


def _drop_database(admin: sa.Engine, url, name: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        gids = conn.execute(
            sa.text("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()")
        ).scalars()
        for gid in list(gids):
            conn.exec_driver_sql(f"ROLLBACK PREPARED '{gid}'")
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# `make test-fast`: only the tests that need no server (no PostgreSQL, no broker process, no
# browser). The whole suite, with every server, is `make test`.
SERVER_FIXTURES = {"postgres_admin_url", "kafka_broker", "broker", "browser", "page"}


def pytest_collection_modifyitems(config, items) -> None:
    if os.environ.get("SHOP_TEST_FAST") != "1":
        return
    fast, slow = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        needs_server = bool(SERVER_FIXTURES & set(getattr(item, "fixturenames", ())))
        needs_server |= "postgres" in params.values() or item.get_closest_marker("slow") is not None
        (slow if needs_server else fast).append(item)
    config.hook.pytest_deselected(items=slow)
    items[:] = fast
