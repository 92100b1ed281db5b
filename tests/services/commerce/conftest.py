"""Commerce on real sockets: the monolith (members, the catalogue, fulfilment), the member
service (points), the order service and the payment service, each reading its settings from
the environment as `shop up` starts them, over a legacy DB and three service DBs of their
own, on SQLite files and on PostgreSQL. The services find each other through the process
registry (their ports in the environment)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from infra.extractions import MEMBERS, ORDERS, PAYMENTS
from infra.settings import DEV_ADMIN_TOKEN, MonolithSettings
from infra.supervisor import free_port
from libs.extraction import ExtractionData
from monolith.entrypoints.app import create_app as create_monolith
from services.member.entrypoints.app import create_app as create_member_service
from services.order.entrypoints.app import create_app as create_order_service
from services.payment.entrypoints.app import create_app as create_payment_service
from tests.support.brokers import NO_BROKER
from tests.support.servers import serving

PASSWORD = "password-123"
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


@dataclass
class Commerce:
    monolith: httpx.Client
    orders: httpx.Client  # the order service
    payments: httpx.Client  # the payment service
    apps: dict[str, Any]
    urls: dict[str, str]  # process name -> base URL

    @property
    def order_data(self) -> ExtractionData:
        return self.apps["order-service"].state.data

    @property
    def payment_data(self) -> ExtractionData:
        return self.apps["payment-service"].state.data

    @property
    def legacy(self) -> sa.Engine:
        return self.order_data.writer.legacy

    def member(self) -> tuple[int, str]:
        email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": PASSWORD, "name": "Buyer"}
        created = self.monolith.post("/api/members", json=body)
        assert created.status_code == 201, created.text
        login = self.monolith.post(
            "/api/members/login", json={"email": email, "password": PASSWORD}
        )
        return created.json()["data"]["id"], login.json()["data"]["token"]

    def product(self, index: int = 0) -> dict:
        return self.monolith.get("/api/products").json()["data"]["items"][index]

    def stock(self, product_id: int) -> int:
        return self.monolith.get(f"/api/products/{product_id}").json()["data"]["stock"]

    def place(self, token: str, product_id: int, quantity: int = 1) -> httpx.Response:
        items = [{"product_id": product_id, "quantity": quantity}]
        return self.orders.post("/api/orders", json={"items": items}, headers=auth(token))

    def order(self, token: str, order_id: int) -> dict:
        return self.orders.get(f"/api/orders/{order_id}", headers=auth(token)).json()

    def hold(self, order_id: int) -> dict:
        return self.monolith.get(f"/internal/stock-holds/{order_id}", headers=ADMIN).json()

    def pay(self, token: str, order_id: int, key: str | None = None, method: str = "card"):
        headers = auth(token, **({"Idempotency-Key": key} if key else {}))
        body = {"order_id": order_id, "method": method}
        return self.payments.post("/api/payments", json=body, headers=headers)

    def order_statuses(self, engine: sa.Engine) -> dict[int, str]:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT id, status FROM orders")).all())


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_urls(backend: str, request, tmp_path) -> dict[str, str]:
    names = ("legacy", "member", "order", "payment")
    if backend == "sqlite":
        return {name: f"sqlite:///{tmp_path / name}.db" for name in names}
    create = request.getfixturevalue("postgres_databases")
    return {name: create() for name in names}


@pytest.fixture
def commerce(db_urls, tmp_path, monkeypatch) -> Callable[..., Any]:
    """`with commerce(mode="shared", bootstrap=None) as shop:` runs the four processes with
    the order and payment services in that data mode (and the member service single, as
    after stage 4); without a broker their events stay in the outboxes."""

    @contextmanager
    def run(mode: str = "shared", bootstrap: str | None = None, **env: str) -> Iterator[Commerce]:
        ports = {name: free_port() for name in ("monolith", "member", "order", "payment")}
        variables = {
            "SHOP_DATA_DIR": str(tmp_path),
            "SHOP_MONOLITH_DB_URL": db_urls["legacy"],
            "SHOP_MONOLITH_PORT": str(ports["monolith"]),
            "SHOP_KAFKA_BOOTSTRAP": bootstrap or NO_BROKER,
            "SHOP_KAFKA_TOPIC_PREFIX": f"test-{uuid.uuid4().hex[:8]}.",
        }
        for extraction, name in ((MEMBERS, "member"), (ORDERS, "order"), (PAYMENTS, "payment")):
            settings = extraction.service.settings
            variables[settings.variable("port")] = str(ports[name])
            variables[settings.variable("grpc_port")] = str(free_port())
            variables[settings.variable("db_url")] = db_urls[name]
            variables[settings.variable("sync_interval")] = "0.05"
            variables[settings.variable("recovery_interval")] = "600"  # tests run it by hand
        for name, value in (variables | env).items():
            monkeypatch.setenv(name, value)
        with ExitStack() as stack:
            apps, clients, urls = {}, {}, {}
            # The monolith first: its migrations make what the services move.
            for process, create, settings in (
                ("monolith", create_monolith, MonolithSettings()),
                ("member-service", create_member_service, MEMBERS.settings()),
                ("order-service", create_order_service, ORDERS.settings(data_mode="shared")),
                ("payment-service", create_payment_service, PAYMENTS.settings(data_mode="shared")),
            ):
                apps[process] = create(settings)
                url = stack.enter_context(serving(apps[process], settings_port(settings)))
                urls[process] = url
                clients[process] = stack.enter_context(httpx.Client(base_url=url, timeout=20))
            shop = Commerce(
                clients["monolith"],
                clients["order-service"],
                clients["payment-service"],
                apps,
                urls,
            )
            for extraction in (ORDERS, PAYMENTS):
                service = extraction.service.name
                for step in {"shared": [], "dual": ["dual"], "single": ["dual", "single"]}[mode]:
                    # The monolith's features first, as the stage engine sets them.
                    flips = {"features": dict(extraction.features.get(step, ()))}
                    flipped = clients["monolith"].put("/admin/features", json=flips, headers=ADMIN)
                    assert flipped.status_code == 200, flipped.text
                    switched = clients[service].put(
                        "/admin/data-mode", json={"mode": step}, headers=ADMIN
                    )
                    assert switched.status_code == 200, switched.text
            yield shop

    return run


def settings_port(settings) -> int:
    return getattr(settings, "monolith_port", None) or settings.port
