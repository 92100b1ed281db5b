"""The catalogue's stock holds, on the legacy DB's own migrations, on SQLite and PostgreSQL:
a hold takes every line's stock or none, a repeat takes nothing, a release gives the stock
back once, a release before its hold refuses the hold; concurrent holds of one order hold
once. And the consumer of `shop.orders` that releases cancelled and refunded orders."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest

from infra.settings import DEV_ADMIN_TOKEN, Settings
from libs.db import make_engine
from libs.errors import Conflict, NotFound
from libs.events.envelope import Event, MalformedEvent
from monolith.adapters.migrate import upgrade
from monolith.adapters.tables import products, stock_holds
from monolith.domain.orders import LineRequest, PricedLine
from monolith.entrypoints.app import create_app
from monolith.seed import CATALOGUE, seed_catalogue
from monolith.service_layer import catalog
from tests.support.kafka_clients import until
from tests.support.servers import serving

TEE, CAP, LIMITED = 1, 11, 12  # the seeded ids of TEE-001, CAP-001, LTD-001
LIMITED_STOCK = CATALOGUE[LIMITED - 1][3]
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    seed_catalogue(engine)
    yield engine
    engine.dispose()


def stock(engine: sa.Engine, product_id: int) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(products.c.stock).where(products.c.id == product_id))


def hold(engine: sa.Engine, order_id: int, *lines: tuple[int, int]) -> catalog.Held:
    with engine.begin() as conn:
        return catalog.hold(conn, order_id, [LineRequest(pid, qty) for pid, qty in lines])


def release(engine: sa.Engine, order_id: int) -> bool:
    with engine.begin() as conn:
        return catalog.release(conn, order_id)


def hold_row(engine: sa.Engine, order_id: int):
    with engine.connect() as conn:
        query = sa.select(stock_holds.c.status, stock_holds.c.lines)
        return conn.execute(query.where(stock_holds.c.order_id == order_id)).first()


def test_a_hold_takes_every_line_s_stock_and_answers_the_lines_priced(engine):
    tee, cap = stock(engine, TEE), stock(engine, CAP)
    held = hold(engine, 7, (CAP, 1), (TEE, 2))
    assert held.applied
    assert held.lines == [  # in the order asked for
        PricedLine(CAP, "Six-panel cap", 35000, 1),
        PricedLine(TEE, "Organic cotton tee", 29000, 2),
    ]
    assert (stock(engine, TEE), stock(engine, CAP)) == (tee - 2, cap - 1)
    assert hold_row(engine, 7).status == "held"


def test_the_same_hold_again_answers_the_first_one_and_takes_nothing(engine):
    first = hold(engine, 7, (TEE, 2), (CAP, 1))
    left = stock(engine, TEE)
    again = hold(engine, 7, (CAP, 1), (TEE, 2))  # the same lines, in another order
    assert (again.lines, again.applied) == (first.lines, False)
    assert stock(engine, TEE) == left


@pytest.mark.parametrize("lines", [[(TEE, 3), (CAP, 1)], [(TEE, 2)], [(TEE, 2), (CAP, 1), (5, 1)]])
def test_other_lines_for_an_order_that_holds_some_are_refused(engine, lines):
    hold(engine, 7, (TEE, 2), (CAP, 1))
    left = stock(engine, TEE)
    with pytest.raises(Conflict) as refused:
        hold(engine, 7, *lines)
    assert refused.value.code == "HOLD_MISMATCH"
    assert stock(engine, TEE) == left


@pytest.mark.parametrize(
    ("lines", "error", "code"),
    [
        ([(TEE, 1), (LIMITED, LIMITED_STOCK + 1)], Conflict, "OUT_OF_STOCK"),
        ([(TEE, 1), (424242, 1)], NotFound, "PRODUCT_NOT_FOUND"),
    ],
)
def test_a_line_that_cannot_be_held_holds_nothing(engine, lines, error, code):
    tee = stock(engine, TEE)
    with pytest.raises(error) as refused:
        hold(engine, 7, *lines)
    assert refused.value.code == code
    assert stock(engine, TEE) == tee
    assert hold_row(engine, 7) is None  # so the order can be held once stock is back


def test_a_release_gives_the_stock_back_once(engine):
    tee = stock(engine, TEE)
    hold(engine, 7, (TEE, 2))
    assert release(engine, 7) is True
    assert release(engine, 7) is False
    assert stock(engine, TEE) == tee
    assert hold_row(engine, 7).status == "released"
    with pytest.raises(Conflict) as refused:
        hold(engine, 7, (TEE, 2))
    assert refused.value.code == "HOLD_RELEASED"


def test_a_release_before_its_hold_leaves_a_tombstone_that_refuses_the_late_hold(engine):
    """The order service gave up on a hold whose answer it never got, and released it; the
    hold then arrives. It must not take stock that no order will ever give back."""
    tee = stock(engine, TEE)
    assert release(engine, 7) is False
    assert tuple(hold_row(engine, 7)) == ("released", [])
    with pytest.raises(Conflict) as refused:
        hold(engine, 7, (TEE, 2))
    assert refused.value.code == "HOLD_RELEASED"
    assert stock(engine, TEE) == tee


def test_concurrent_identical_holds_of_one_order_hold_once(engine):
    limited = stock(engine, LIMITED)
    start = threading.Barrier(8)

    def attempt(_):
        start.wait()
        return hold(engine, 7, (LIMITED, 3), (TEE, 1)).applied

    with ThreadPoolExecutor(8) as pool:
        applied = list(pool.map(attempt, range(8)))
    assert sorted(applied) == [False] * 7 + [True]
    assert stock(engine, LIMITED) == limited - 3


def test_a_hold_racing_its_release_leaves_the_stock_where_it_was(engine):
    """Whichever comes first, the order ends released and its stock back in the catalogue:
    a hold then release gives it back, a release then hold refuses the hold."""
    limited = stock(engine, LIMITED)

    def race(order_id: int) -> None:
        start = threading.Barrier(2)

        def held():
            start.wait()
            try:
                hold(engine, order_id, (LIMITED, 1))
            except Conflict as refused:
                assert refused.code == "HOLD_RELEASED"

        def released():
            start.wait()
            release(engine, order_id)

        with ThreadPoolExecutor(2) as pool:
            for done in [pool.submit(held), pool.submit(released)]:
                done.result()

    for order_id in range(100, 110):
        race(order_id)
        assert hold_row(engine, order_id).status == "released"
    assert stock(engine, LIMITED) == limited


def order_event(kind: str, order_id: int = 7, **data) -> Event:
    body = {"order_id": order_id, "member_id": 3, "status": kind.removeprefix("Order").upper()}
    return Event(kind, "order", str(order_id), 2, body | data)


def handle(engine: sa.Engine, event: Event) -> None:
    with engine.begin() as conn:
        catalog.handle_order_event(conn, event)


@pytest.mark.parametrize("kind", ["OrderCancelled", "OrderRefunded"])
def test_a_cancelled_or_refunded_order_s_hold_is_released_by_its_event(engine, kind):
    tee = stock(engine, TEE)
    hold(engine, 7, (TEE, 2))
    handle(engine, order_event(kind, previous_status="PLACED", payment_id=None))
    assert stock(engine, TEE) == tee
    handle(engine, order_event(kind))  # another copy of the news gives nothing back again
    assert stock(engine, TEE) == tee


@pytest.mark.parametrize("kind", ["OrderPlaced", "OrderPaid", "OrderShipped"])
def test_the_other_order_events_change_nothing(engine, kind):
    held = hold(engine, 7, (TEE, 2))
    left = stock(engine, TEE)
    handle(engine, order_event(kind))
    assert (stock(engine, TEE), hold_row(engine, 7).status) == (left, "held")
    assert held.applied


def test_an_order_event_without_its_order_id_is_refused_for_the_runner_to_park(engine):
    broken = Event("OrderCancelled", "order", "7", 2, {"order_id": "7", "member_id": 3})
    with pytest.raises(MalformedEvent, match=r"data\.order_id"):
        handle(engine, broken)


async def test_an_order_cancelled_elsewhere_gives_its_stock_back_through_the_broker(
    tmp_path, bootstrap, unique, producer
):
    """The order service announces a cancel on shop.orders; the catalogue's own group,
    `monolith.catalogue`, releases the order's hold once, whether the event comes twice (a
    redelivery: the inbox skips it) or the news comes again as a new event (nothing left)."""
    prefix = unique("stock") + "."
    settings = Settings(data_dir=tmp_path, kafka_bootstrap=bootstrap, kafka_topic_prefix=prefix)
    app = create_app(settings)
    with serving(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=15, headers=ADMIN) as http:
            products = (await http.get("/api/products", params={"limit": 100})).json()
            limited = next(p for p in products["data"]["items"] if p["sku"] == "LTD-001")
            body = {"items": [{"product_id": limited["id"], "quantity": 5}]}
            assert (await http.put("/internal/stock-holds/424242", json=body)).status_code == 200
            await until(lambda: app.state.consumers[1].assignment(), within=30)
            cancelled = order_event("OrderCancelled", 424242, previous_status="PLACED")
            again = order_event("OrderCancelled", 424242, previous_status="PLACED")
            for event in (cancelled, cancelled, again):
                topic = prefix + "shop.orders"
                await producer.send_and_wait(topic, event.to_bytes(), key=event.key)
            counted = f'shop_consumer_events_total{{group="{catalog.GROUP}",outcome='
            await until(
                lambda: (
                    f'{counted}"processed"}} 2.0' in metrics(app)
                    and f'{counted}"duplicate"}} 1.0' in metrics(app)
                ),
                within=30,
            )
            hold = (await http.get("/internal/stock-holds/424242")).json()["data"]
            after = (await http.get(f"/api/products/{limited['id']}")).json()["data"]
    assert hold["status"] == "released"
    assert after["stock"] == limited["stock"]


def metrics(app) -> str:
    return generate_latest(app.state.metrics.registry).decode()
