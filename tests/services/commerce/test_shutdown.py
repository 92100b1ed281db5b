"""SIGTERM to the order service, then to the payment service, each a real `shop run` process
taking orders and payments from concurrent clients in dual write (so each relays its own
outbox): it stops taking work, finishes what is in flight, publishes its outbox, and exits 0.
Every order and payment it acknowledged is in both DBs, none is left half-placed, and the
events of what it acknowledged were all published before it exited."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
import sqlalchemy as sa

from infra.extractions import EXTRACTIONS
from infra.supervisor import Supervisor, free_port
from libs.db import make_engine
from tests.services.commerce.conftest import ADMIN, PASSWORD, auth

pytestmark = pytest.mark.slow


class Clients:
    """Workers placing and paying orders until told to stop; what was acknowledged, and
    every answer that was neither an acknowledgement nor a clean refusal."""

    def __init__(self, orders_url: str, payments_url: str, token: str) -> None:
        self.orders_url, self.payments_url, self.token = orders_url, payments_url, token
        self.placed: set[int] = set()
        self.paid: set[int] = set()
        self.unclean: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10, headers=auth(self.token)) as http:
            while not self.stop.is_set():
                order = self._call(http, f"{self.orders_url}/api/orders", {"items": ITEMS})
                if order is None:
                    continue
                self.placed.add(order["id"])
                body = {"order_id": order["id"]}
                key = {"Idempotency-Key": str(uuid.uuid4())}
                paid = self._call(http, f"{self.payments_url}/api/payments", body, key)
                if paid is not None:
                    self.paid.add(paid["id"])

    def _call(self, http: httpx.Client, url: str, body: dict, headers=None) -> dict | None:
        try:
            reply = http.post(url, json=body, headers=headers)
        except httpx.TransportError:  # the process stopped accepting: a clean refusal
            time.sleep(0.05)
            return None
        if reply.status_code == 201:
            return reply.json()["data"]
        if reply.status_code != 503:  # draining answers 503, never a 5xx of a broken write
            self.unclean.append(f"{url}: {reply.status_code} {reply.text[:200]}")
        time.sleep(0.05)
        return None


ITEMS = [{"product_id": 1, "quantity": 1}]


def test_the_order_and_payment_services_stop_gracefully_under_load(tmp_path):
    names = ("monolith", *(e.service.name for e in EXTRACTIONS))
    ports = {name: free_port() for name in names}
    broker = free_port()
    env = {"SHOP_DATA_DIR": str(tmp_path), "SHOP_BROKER_PORT": str(broker)}
    env |= {"SHOP_MONOLITH_PORT": str(ports["monolith"])}
    for e in EXTRACTIONS:
        settings = e.service.settings
        env |= {settings.variable("port"): str(ports[e.service.name])}
        env |= {settings.variable("grpc_port"): str(free_port())}
    supervisor = Supervisor(env, tmp_path / "logs")
    try:
        supervisor.start_broker(broker, tmp_path / "broker")
        supervisor.wait_ready()
        supervisor.start_in_order(ports)
        urls = {name: child.url for name, child in supervisor.children.items()}
        for extraction in EXTRACTIONS:
            if extraction.service.name not in ("order-service", "payment-service"):
                continue
            # The monolith's features first, as the stage engine sets them.
            flips = {"features": dict(extraction.features.get("dual", ()))}
            flipped = httpx.put(f"{urls['monolith']}/admin/features", json=flips, headers=ADMIN)
            assert flipped.status_code == 200, flipped.text
            moved = httpx.put(
                f"{urls[extraction.service.name]}/admin/data-mode",
                json={"mode": "dual"},
                headers=ADMIN,
            )
            assert moved.status_code == 200, moved.text
        email = f"calm-{uuid.uuid4().hex[:8]}@example.com"
        signup = {"email": email, "password": PASSWORD, "name": "Calm"}
        assert httpx.post(f"{urls['monolith']}/api/members", json=signup).status_code == 201
        login = httpx.post(
            f"{urls['monolith']}/api/members/login", json={"email": email, "password": PASSWORD}
        )
        clients = Clients(urls["order-service"], urls["payment-service"], _token(login))
        workers = [threading.Thread(target=clients.run) for _ in range(4)]
        for worker in workers:
            worker.start()

        codes = {}
        for service in ("order-service", "payment-service"):
            time.sleep(2.0)  # under load
            child = supervisor.children[service]
            child.process.terminate()  # SIGTERM
            codes[service] = child.process.wait(timeout=30)
        clients.stop.set()
        for worker in workers:
            worker.join(timeout=15)

        assert codes == {"order-service": 0, "payment-service": 0}
        assert clients.unclean == []
        assert clients.placed and clients.paid  # both really were under load
        for e in EXTRACTIONS[1:]:
            own = make_engine(e.settings(data_dir=tmp_path).db)
            legacy = make_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
            try:
                table = "orders" if e.name == "orders" else "payments"
                acknowledged = clients.placed if e.name == "orders" else clients.paid
                for engine in (legacy, own):
                    with engine.connect() as conn:
                        ids = set(conn.execute(sa.text(f"SELECT id FROM {table}")).scalars())
                        assert acknowledged <= ids, f"{e.name}: acknowledged writes missing"
                with own.connect() as conn:
                    unpublished = conn.scalar(
                        sa.text("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
                    )
                    assert unpublished == 0, f"{e.name}: events left in the outbox"
                    if e.name == "orders":
                        stuck = conn.scalar(
                            sa.text("SELECT count(*) FROM orders WHERE status = 'PENDING'")
                        )
                        assert stuck == 0  # every placement in flight finished
            finally:
                own.dispose()
                legacy.dispose()
    finally:
        supervisor.stop()


def _token(login: httpx.Response) -> str:
    assert login.status_code == 200, login.text
    return login.json()["data"]["token"]
