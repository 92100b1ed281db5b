"""The monolith on a real socket, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from infra.settings import Settings
from monolith.adapters.tables import event_outbox, metadata
from monolith.entrypoints.app import create_app
from tests.support.brokers import NO_BROKER
from tests.support.servers import serving


@dataclass
class Shop:
    http: httpx.Client
    engine: sa.Engine

    def member(self, name: str = "Kim") -> str:
        """Sign a new member up and return its bearer token."""
        email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        created = self.http.post(
            "/api/members", json={"email": email, "password": "password-123", "name": name}
        )
        assert created.status_code == 201, created.text
        login = self.http.post(
            "/api/members/login", json={"email": email, "password": "password-123"}
        )
        return login.json()["data"]["token"]

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def product(self, sku: str) -> dict:
        items = self.http.get("/api/products", params={"limit": 100}).json()["data"]["items"]
        return next(p for p in items if p["sku"] == sku)

    def order(self, token: str, *lines: tuple[int, int]) -> httpx.Response:
        items = [{"product_id": pid, "quantity": qty} for pid, qty in lines]
        return self.http.post("/api/orders", json={"items": items}, headers=self.auth(token))

    def snapshot(self) -> dict[str, list]:
        """Every row of every table: 'changes nothing' is checked against this. The outbox's
        delivery bookkeeping is left out: the relay updates it in the background."""
        with self.engine.connect() as conn:
            return {t.name: conn.execute(_content(t)).all() for t in metadata.sorted_tables}


def _content(table: sa.Table) -> sa.Select:
    skip = {"published_at", "attempts", "last_error"} if table is event_outbox else set()
    query = sa.select(*(c for c in table.c if c.name not in skip))
    return query.order_by(*table.primary_key.columns)  # an UPDATE moves a row in PostgreSQL


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'legacy.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def shop(db_url: str, tmp_path) -> Iterator[Shop]:
    settings = Settings(data_dir=tmp_path, monolith_db_url=db_url, kafka_bootstrap=NO_BROKER)
    app = create_app(settings)
    with serving(app) as url, httpx.Client(base_url=url, timeout=15) as http:
        yield Shop(http, app.state.engine)
