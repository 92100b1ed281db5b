"""Shared fixtures. Tests that need PostgreSQL, Redis or MongoDB use the real servers named by
SHOP_TEST_POSTGRES_URL / SHOP_TEST_REDIS_URL / SHOP_TEST_MONGO_URL (CI sets them, with
FerretDB as the MongoDB-wire server); where a server is absent they skip with the reason,
except under SHOP_TEST_REQUIRE_SERVERS=1 (CI), where they fail. A test (or a parameter) marked
`mongodb` is checked for its server before it runs."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pymongo
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from libs.dualwrite.twophase import prepared_transactions_allowed

# The two-broker fixtures (kafka_broker, bootstrap, producer, ...), for any test directory.
pytest_plugins = ["tests.support.kafka_fixtures"]

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_MONGO = "mongodb://127.0.0.1:27017/"


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


@functools.cache
def _mongo_unreachable(url: str) -> Exception | None:
    """Why the MongoDB-wire server at `url` cannot be used (None: it answers a ping), asked
    once a session."""
    client: pymongo.MongoClient = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000, socketTimeoutMS=2000
    )
    try:
        client.admin.command("ping")
    except Exception as exc:
        return exc
    finally:
        client.close()
    return None


def _mongo_server() -> str:
    url = os.environ.get("SHOP_TEST_MONGO_URL", DEFAULT_MONGO)
    why = _mongo_unreachable(url)
    if why is not None:
        _unavailable("MongoDB", why)
    return url


@pytest.fixture(scope="session")
def mongo_server_url() -> str:
    return _mongo_server()


@pytest.fixture
def mongo_url(mongo_server_url: str) -> Iterator[str]:
    """The server's URL naming a fresh database (its path) for one test, dropped afterwards."""
    name = f"shop_test_{uuid.uuid4().hex[:12]}"
    yield urlunsplit(urlsplit(mongo_server_url)._replace(path=f"/{name}"))
    client: pymongo.MongoClient = pymongo.MongoClient(
        mongo_server_url, serverSelectionTimeoutMS=5000
    )
    try:
        client.drop_database(name)
    finally:
        client.close()


def pytest_runtest_setup(item) -> None:
    # The marker alone brings the check, so a parametrized test can mark just the parameter
    # that needs the server.
    if item.get_closest_marker("mongodb") is not None:
        _mongo_server()


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


# `make test-fast`: only the tests that need no server (no PostgreSQL, no MongoDB, no broker
# process, no browser). The whole suite, with every server, is `make test`.
SERVER_FIXTURES = {
    "postgres_admin_url",
    "mongo_server_url",
    "mongo_url",
    "kafka_broker",
    "broker",
    "browser",
    "page",
}
SERVER_MARKERS = ("slow", "mongodb")


def pytest_collection_modifyitems(config, items) -> None:
    if os.environ.get("SHOP_TEST_FAST") != "1":
        return
    fast, slow = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        needs_server = bool(SERVER_FIXTURES & set(getattr(item, "fixturenames", ())))
        needs_server |= "postgres" in params.values()
        needs_server |= any(item.get_closest_marker(name) for name in SERVER_MARKERS)
        (slow if needs_server else fast).append(item)
    config.hook.pytest_deselected(items=slow)
    items[:] = fast
