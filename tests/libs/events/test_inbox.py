"""The inbox and parked events on each real database: the processed-event key, parking once,
and a replay mark that holds once."""

from __future__ import annotations

import threading

import pytest

from libs.events.envelope import Event

GROUP = "read-model"


def test_an_event_id_is_recorded_once_per_group(inbox_db):
    with inbox_db.engine.begin() as conn:
        first = inbox_db.inbox.record(conn, GROUP, "e-1", "shop.members", 0, 7)
        again = inbox_db.inbox.record(conn, GROUP, "e-1", "shop.members", 0, 9)
        other_group = inbox_db.inbox.record(conn, "points", "e-1", "shop.members", 0, 7)
    with inbox_db.engine.connect() as conn:
        assert inbox_db.inbox.is_processed(conn, GROUP, "e-1")
        assert not inbox_db.inbox.is_processed(conn, GROUP, "e-2")
    assert (first, again, other_group) == (True, False, True)


def test_a_rolled_back_transaction_leaves_the_event_unprocessed(inbox_db):
    with inbox_db.engine.connect() as conn:
        with conn.begin() as tx:
            inbox_db.inbox.record(conn, GROUP, "e-1", "shop.members", 0, 0)
            tx.rollback()
        assert not inbox_db.inbox.is_processed(conn, GROUP, "e-1")
        conn.rollback()
        with conn.begin():
            assert inbox_db.inbox.record(conn, GROUP, "e-1", "shop.members", 0, 0)


def test_the_transaction_goes_on_after_a_duplicate(inbox_db):
    # On PostgreSQL a failed INSERT would abort the transaction; the duplicate must not.
    event = Event("MemberJoined", "member", "m-1", 1, {})
    with inbox_db.engine.begin() as conn:
        inbox_db.inbox.record(conn, GROUP, event.id, "shop.members", 0, 0)
        assert not inbox_db.inbox.record(conn, GROUP, event.id, "shop.members", 0, 0)
        inbox_db.apply(conn, event)
    assert [row.event_id for row in inbox_db.applied_rows()] == [event.id]


def test_a_concurrent_duplicate_waits_for_the_first_and_is_refused(inbox_db):
    """Two members of a group during a rebalance: only one of them may apply the event."""
    results: list[bool] = []
    with inbox_db.engine.connect() as first:
        tx = first.begin()
        assert inbox_db.inbox.record(first, GROUP, "e-1", "shop.members", 0, 0)

        def second() -> None:
            with inbox_db.engine.begin() as conn:
                results.append(inbox_db.inbox.record(conn, GROUP, "e-1", "shop.members", 0, 0))

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # blocked behind the uncommitted first insert
        tx.commit()
    thread.join(timeout=10)
    assert results == [False]


def test_a_message_is_parked_once_at_its_place(inbox_db):
    place = (GROUP, "shop.members", 2, 41)
    with inbox_db.engine.begin() as conn:
        assert inbox_db.inbox.park(conn, *place, b"m-1", b"\xff not json", "malformed: x")
        assert not inbox_db.inbox.park(conn, *place, b"m-1", b"\xff not json", "malformed: y")
        inbox_db.inbox.park(conn, "points", "shop.members", 2, 41, None, None, "no value")
    with inbox_db.engine.connect() as conn:
        ours = inbox_db.inbox.parked_events(conn, [GROUP])
        everyone = inbox_db.inbox.parked_events(conn)
    [parked] = ours
    assert (parked.topic, parked.partition, parked.offset) == ("shop.members", 2, 41)
    assert (parked.key, parked.value, parked.reason) == (b"m-1", b"\xff not json", "malformed: x")
    assert parked.replayed_at is None
    assert [p.consumer_group for p in everyone] == [GROUP, "points"]


def test_a_parked_event_is_marked_replayed_once(inbox_db):
    with inbox_db.engine.begin() as conn:
        inbox_db.inbox.park(conn, GROUP, "shop.members", 0, 1, None, b"a", "r")
        inbox_db.inbox.park(conn, GROUP, "shop.members", 0, 2, None, b"b", "r")
        first, second = inbox_db.inbox.parked_events(conn)
        assert inbox_db.inbox.mark_replayed(conn, first.id)
        assert not inbox_db.inbox.mark_replayed(conn, first.id)
        assert not inbox_db.inbox.mark_replayed(conn, 999_999)
    with inbox_db.engine.connect() as conn:
        replayed = inbox_db.inbox.parked_events(conn, replayed=True)
        waiting = inbox_db.inbox.parked_events(conn, replayed=False)
        assert inbox_db.inbox.parked_event(conn, 999_999) is None
        assert inbox_db.inbox.parked_event(conn, first.id).replayed_at is not None
        assert inbox_db.inbox.waiting_count(conn, GROUP) == 1
        assert inbox_db.inbox.waiting_count(conn, "another-group") == 0
    assert [p.id for p in replayed] == [first.id]
    assert [p.id for p in waiting] == [second.id]


@pytest.mark.parametrize("limit", [1, 2])
def test_the_listing_is_oldest_first_and_bounded(inbox_db, limit):
    with inbox_db.engine.begin() as conn:
        for offset in range(3):
            inbox_db.inbox.park(conn, GROUP, "shop.orders", 0, offset, None, b"x", "r")
    with inbox_db.engine.connect() as conn:
        listed = inbox_db.inbox.parked_events(conn, limit=limit)
    assert [p.offset for p in listed] == list(range(limit))
