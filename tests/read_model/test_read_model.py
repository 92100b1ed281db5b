"""The read model end to end: events on a real broker (the dev broker and Apache Kafka),
views in a real store, served over HTTP with the envelope."""

from __future__ import annotations

import pytest

from tests.read_model.conftest import (
    ReadModel,
    member_event,
    order_event,
    payment_event,
    token,
)


async def test_events_become_my_page_and_order_detail(rm: ReadModel):
    await rm.publish(
        member_event(7, 1, 0),
        order_event(10, 7, 1, "PLACED"),
        payment_event(5, 10, 7, 1),
        order_event(10, 7, 2, "PAID"),
        member_event(7, 2, 30),
    )
    page = await rm.page_shows(7, lambda p: p["points"] == 30 and _paid(p["orders"]))
    assert page["member"] == {"id": 7, "email": "m7@example.com", "name": "Kim", "phone": None}
    [order] = page["orders"]
    assert (order["id"], order["status"], order["total"]) == (10, "PAID", 3000)
    assert order["payment"] == {"id": 5, "method": "card", "status": "COMPLETED",
                                "amount": 3000, "points_spent": 0, "points_earned": 30}  # fmt: skip
    detail = await rm.order(7, 10)
    assert detail.status_code == 200
    body = detail.json()["data"]
    assert body["status"] == "PAID" and body["payment"]["id"] == 5
    assert [e["type"] for e in body["timeline"]] == ["OrderPlaced", "OrderPaid", "PaymentCompleted"]
    assert int(detail.headers["X-View-Version"]) >= 3


def _paid(orders: list[dict]) -> bool:
    """The page's one order has all its events: placed, paid, and its payment."""
    return bool(orders) and orders[0]["status"] == "PAID" and orders[0]["payment"] is not None


async def test_what_the_read_side_does_not_have_is_a_clear_envelope_error(rm: ReadModel):
    await rm.publish(member_event(8, 1, 0), order_event(20, 8, 1, "PLACED"))
    await rm.page_shows(8, lambda p: p["orders"])
    # Another member's order, an unknown order, a member without events: 404, nothing told.
    for reply in (await rm.order(9, 20), await rm.order(8, 999), await rm.my_page(12345)):
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] in ("ORDER_NOT_FOUND", "VIEW_NOT_FOUND")
    no_token = await rm.http.get("/api/views/my-page")
    assert no_token.status_code == 401
    for bad in ("0", "-1", "abc", str(2**64), "1.5"):
        reply = await rm.http.get(f"/api/views/orders/{bad}", headers=token(8))
        assert reply.status_code == 422, bad
        assert reply.json()["error"]["code"] == "VALIDATION_FAILED"


async def test_duplicates_and_events_ahead_of_a_missing_one_end_as_if_each_came_once(rm: ReadModel):
    placed, paid = order_event(30, 9, 1, "PLACED"), order_event(30, 9, 2, "PAID")
    refunded = order_event(30, 9, 3, "REFUNDED")
    # The order's later events first (as at an outbox hand-over), then everything twice.
    await rm.publish(member_event(9, 1, 0), refunded, paid)
    await rm.page_shows(9, lambda p: p["member"] is not None)
    held = await rm.order(9, 30)
    assert held.status_code == 404  # not placed yet as far as the view knows: held, not shown
    await rm.publish(placed, paid, refunded, placed, member_event(9, 1, 0))
    page = await rm.page_shows(9, lambda p: p["orders"] and p["orders"][0]["status"] == "REFUNDED")
    detail = (await rm.order(9, 30)).json()["data"]
    assert [e["status"] for e in detail["timeline"]] == ["PLACED", "PAID", "REFUNDED"]
    assert page["points"] == 0


async def test_a_malformed_event_is_parked_and_the_partition_moves_on(rm: ReadModel):
    await rm.publish(raw=b"not an envelope", topic="shop.orders")
    bad = order_event(40, 10, 1, "PLACED")
    broken = type(bad)(bad.type, bad.aggregate_type, bad.aggregate_id, 1, {"order_id": 40})
    await rm.publish(broken, member_event(10, 1, 0), order_event(41, 10, 1, "PLACED"))
    await rm.page_shows(10, lambda p: [o["id"] for o in p["orders"]] == [41])
    admin = {"Authorization": f"Bearer {rm.settings.admin_token}"}

    async def parked() -> int:
        reply = await rm.http.get("/admin/events/parked", headers=admin)
        return len(reply.json()["data"]["parked"]) if reply.status_code == 200 else 0

    async def both_parked() -> bool:
        return await parked() >= 2

    await rm.until(both_parked)


async def test_a_restart_keeps_the_views_and_applies_nothing_twice(read_model):
    async with read_model() as first:
        await first.publish(member_event(11, 1, 0), order_event(50, 11, 1, "PLACED"))
        await first.page_shows(11, lambda p: p["orders"])
        version = (await first.my_page(11)).headers["X-View-Version"]
    async with read_model() as again:
        await again.publish(order_event(50, 11, 2, "CANCELLED"))
        page = await again.page_shows(11, lambda p: p["orders"][0]["status"] == "CANCELLED")
        assert page["orders"][0]["total"] == 3000
        # Nothing before the restart was applied again: one more change, the cancel.
        assert int((await again.my_page(11)).headers["X-View-Version"]) == int(version) + 1


async def test_metrics_show_freshness_and_view_changes(rm: ReadModel):
    await rm.publish(member_event(12, 1, 0), member_event(12, 1, 0))
    await rm.page_shows(12, lambda p: p["member"] is not None)
    text = (await rm.http.get("/metrics")).text
    assert "shop_read_model_freshness_seconds_count" in text
    assert 'shop_read_model_view_changes_total{kind="my_page",outcome="applied"}' in text
    assert 'shop_read_model_cache_reads_total{outcome="off"}' in text
    ready = await rm.http.get("/health/ready")
    assert ready.status_code == 200


def test_the_read_model_is_a_process_of_the_system():
    from infra.processes import PROCESSES
    from infra.stages import STAGES

    assert PROCESSES["read-model"].stage == 9 == STAGES[-1].number
    assert "read-model" in STAGES[-1].needs


@pytest.mark.parametrize(
    "store_url", ["postgres", pytest.param("mongodb", marks=pytest.mark.mongodb)], indirect=True
)
async def test_the_same_views_on_postgresql_and_mongodb(rm: ReadModel):
    await rm.publish(
        order_event(60, 13, 2, "PAID"),  # ahead of its OrderPlaced: held in the document
        member_event(13, 1, 0),
        order_event(60, 13, 1, "PLACED"),
        payment_event(6, 60, 13, 1),
        member_event(13, 2, 30),
    )
    page = await rm.page_shows(13, lambda p: p["points"] == 30 and _paid(p["orders"]))
    assert [(o["id"], o["status"]) for o in page["orders"]] == [(60, "PAID")]
    detail = (await rm.order(13, 60)).json()["data"]
    assert detail["lines"] == [{"product_id": 1, "quantity": 2, "unit_price": 1500}]


async def test_with_redis_a_read_is_a_hit_until_the_event_that_changes_the_view(
    read_model, redis_url: str
):
    async with read_model(redis_url=redis_url) as rm:
        await rm.publish(member_event(14, 1, 0))
        await rm.page_shows(14, lambda p: p["points"] == 0)
        for _ in range(3):
            assert (await rm.my_page(14)).json()["data"]["points"] == 0
        await rm.publish(member_event(14, 2, 700))
        await rm.page_shows(14, lambda p: p["points"] == 700)  # invalidated, not stale
        text = (await rm.http.get("/metrics")).text
        hits = _sample(text, 'shop_read_model_cache_reads_total{outcome="hit"}')
        misses = _sample(text, 'shop_read_model_cache_reads_total{outcome="miss"}')
        assert hits >= 3 and misses >= 2


def _sample(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name))
    return float(line.rsplit(" ", 1)[1])


async def test_a_rebuild_replays_the_log_into_a_new_generation_and_swaps_it_in(rm: ReadModel):
    admin = {"Authorization": f"Bearer {rm.settings.admin_token}"}
    await rm.publish(
        member_event(15, 1, 0), order_event(70, 15, 1, "PLACED"), payment_event(7, 70, 15, 1),
        order_event(70, 15, 2, "PAID"), member_event(15, 2, 30), member_event(16, 1, 0),
    )  # fmt: skip
    before = await rm.page_shows(15, lambda p: p["points"] == 30 and _paid(p["orders"]))
    started = await rm.http.post("/admin/read-model/rebuild", headers=admin)
    assert started.status_code == 202
    again = await rm.http.post("/admin/read-model/rebuild", headers=admin)
    assert again.status_code in (202, 409)  # 409 while the first one runs

    async def swapped() -> bool:
        status = (await rm.http.get("/admin/read-model", headers=admin)).json()["data"]
        served = await rm.my_page(15)  # answered throughout, from the old or the new one
        assert served.status_code == 200
        return status["rebuild"]["state"] == "swapped"

    await rm.until(swapped, within=60)
    status = (await rm.http.get("/admin/read-model", headers=admin)).json()["data"]
    assert status["generation"] in ("g2", "g3")
    assert status["views"] == {"my_page": 2, "order": 1}
    assert status["rebuild"]["events_to_replay"] >= 6
    assert (await rm.my_page(15)).json()["data"] == before
    # The new generation is the live one: later events reach it.
    await rm.publish(order_event(70, 15, 3, "REFUNDED"))
    await rm.page_shows(15, lambda p: p["orders"][0]["status"] == "REFUNDED")
    states = {g["name"]: g["state"] for g in status["generations"]}
    assert states["g1"] == "retired" and states[status["generation"]] == "serving"


async def test_the_admin_api_needs_the_admin_token(rm: ReadModel):
    for method, path in (("GET", "/admin/read-model"), ("POST", "/admin/read-model/rebuild"),
                         ("GET", "/admin/read-model/views/my_page/1")):  # fmt: skip
        reply = await rm.http.request(method, path)
        assert reply.status_code == 401
        reply = await rm.http.request(method, path, headers={"Authorization": "Bearer nope"})
        assert reply.status_code == 403
    unknown = await rm.http.get(
        "/admin/read-model/views/cart/1",
        headers={"Authorization": f"Bearer {rm.settings.admin_token}"},
    )
    assert unknown.status_code == 404


def test_two_read_models_with_dbs_of_their_own_never_share_views(tmp_path):
    """One data dir, two read models (the benchmark's with and without Redis): each one's
    views default to a file beside its own DB, never to one file of the data dir."""
    from infra.settings import ReadModelSettings

    first = ReadModelSettings(data_dir=tmp_path)
    second = ReadModelSettings(
        data_dir=tmp_path, read_model_db_url=f"sqlite:///{tmp_path / 'cached.db'}"
    )
    assert first.read_model_store == f"sqlite:///{tmp_path / 'read_model.views.db'}"
    assert second.read_model_store == f"sqlite:///{tmp_path / 'cached.views.db'}"
    postgres = "postgresql+psycopg://postgres@127.0.0.1:5432/views"
    assert ReadModelSettings(read_model_db_url=postgres).read_model_store == postgres
