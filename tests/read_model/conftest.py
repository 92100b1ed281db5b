"""The read model on a real socket, fed by real events on a real broker: a test produces the
envelopes the owners would publish (libs/events' own bytes) and reads /api/views back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from infra.settings import DEV_JWT_SECRET, ReadModelSettings
from infra.supervisor import free_port
from libs.auth import TokenIssuer
from libs.events.envelope import Event
from read_model.entrypoints.app import create_app
from tests.support.servers import serving

T0 = datetime.now(UTC) - timedelta(minutes=5)


def token(member_id: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {TokenIssuer(DEV_JWT_SECRET, 3600).issue(member_id)}"}


def member_event(member_id: int, seq: int, points: int, name: str = "Kim") -> Event:
    data = {"member_id": member_id, "email": f"m{member_id}@example.com", "name": name}
    data |= {"phone": None, "points": points, "version": seq}
    kind = "MemberRegistered" if seq == 1 else "MemberPointsChanged"
    return Event(kind, "member", str(member_id), seq, data, occurred_at=_at(seq))


def order_event(order_id: int, member_id: int, seq: int, status: str) -> Event:
    kinds = {"PLACED": "OrderPlaced", "PAID": "OrderPaid", "CANCELLED": "OrderCancelled",
             "REFUNDED": "OrderRefunded"}  # fmt: skip
    data: dict[str, Any] = {"order_id": order_id, "member_id": member_id, "status": status}
    if status == "PLACED":
        data |= {"total": 3000, "lines": [{"product_id": 1, "quantity": 2, "unit_price": 1500}]}
    return Event(kinds[status], "order", str(order_id), seq, data, occurred_at=_at(10 + seq))


def payment_event(payment_id: int, order_id: int, member_id: int, seq: int) -> Event:
    status = "COMPLETED" if seq == 1 else "REFUNDED"
    data = {"payment_id": payment_id, "order_id": order_id, "member_id": member_id,
            "amount": 3000, "method": "card", "status": status, "points_earned": 30,
            "points_spent": 0}  # fmt: skip
    kind = "PaymentCompleted" if seq == 1 else "PaymentRefunded"
    return Event(kind, "payment", str(payment_id), seq, data, occurred_at=_at(20 + seq))


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


TOPIC_OF = {"member": "shop.members", "order": "shop.orders", "payment": "shop.payments"}


@dataclass
class ReadModel:
    url: str
    app: Any
    settings: ReadModelSettings
    producer: AIOKafkaProducer
    http: httpx.AsyncClient
    sent: list[Event] = field(default_factory=list)

    async def publish(self, *events: Event, raw: bytes | None = None, topic: str = "") -> None:
        for event in events:
            name = self.settings.kafka_topic_prefix + TOPIC_OF[event.aggregate_type]
            await self.producer.send_and_wait(name, event.to_bytes(), key=event.key)
            self.sent.append(event)
        if raw is not None:
            await self.producer.send_and_wait(self.settings.kafka_topic_prefix + topic, raw)

    async def my_page(self, member_id: int) -> httpx.Response:
        return await self.http.get("/api/views/my-page", headers=token(member_id))

    async def order(self, member_id: int, order_id: int) -> httpx.Response:
        return await self.http.get(f"/api/views/orders/{order_id}", headers=token(member_id))

    async def until(self, check: Callable[[], Any], within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {within}s")
            await asyncio.sleep(0.05)

    async def page_shows(self, member_id: int, predicate: Callable[[dict], bool]) -> dict:
        found: dict = {}

        async def check() -> bool:
            reply = await self.my_page(member_id)
            if reply.status_code != 200:
                return False
            found.update(reply.json()["data"])
            return predicate(reply.json()["data"])

        await self.until(check)
        return found


@pytest.fixture
def store_url(request, tmp_path) -> str:
    """The store under test: SQLite by default; parametrize indirectly for the others."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'views.db'}"
    if kind == "postgres":
        return request.getfixturevalue("postgres_databases")()
    return request.getfixturevalue("mongo_url")


@pytest.fixture
def read_model(bootstrap, tmp_path, store_url) -> Callable[..., Any]:
    """`async with read_model(**settings) as rm:` runs the read model until the block ends;
    a second block with the same `prefix` is the same system restarted."""
    prefix = f"test-{uuid.uuid4().hex[:8]}."

    def settings_for(**overrides: Any) -> ReadModelSettings:
        return ReadModelSettings(
            data_dir=tmp_path,
            kafka_bootstrap=bootstrap,
            kafka_topic_prefix=prefix,
            read_model_port=free_port(),
            read_model_store_url=store_url,
            **overrides,
        )

    class Running:
        def __init__(self, **overrides: Any) -> None:
            self.overrides = overrides

        async def __aenter__(self) -> ReadModel:
            settings = settings_for(**self.overrides)
            app = create_app(settings)
            self._serving = serving(app, settings.read_model_port)
            url = await asyncio.to_thread(self._serving.__enter__)
            self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
            await self.producer.start()
            self.http = httpx.AsyncClient(base_url=url, timeout=10)
            return ReadModel(url, app, settings, self.producer, self.http)

        async def __aexit__(self, *exc: object) -> None:
            await self.http.aclose()
            await self.producer.stop()
            await asyncio.to_thread(self._serving.__exit__, None, None, None)

    return Running


@pytest.fixture
async def rm(read_model) -> AsyncIterator[ReadModel]:
    async with read_model() as running:
        yield running


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """A Redis database of its own for the test (SHOP_TEST_REDIS_URL's server), flushed after."""
    import os

    import redis.asyncio as aioredis

    from tests.conftest import _unavailable

    base = os.environ.get("SHOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = aioredis.Redis.from_url(base, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        _unavailable("Redis", exc)
    try:
        yield base
    finally:
        await client.aclose()
