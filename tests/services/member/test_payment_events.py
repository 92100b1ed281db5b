"""Credits travel as events: the monolith's payments write PaymentCompleted and PaymentRefunded
to their outbox, its relay publishes them to `shop.payments`, and the member service's
consumer group earns a card payment's points and gives a refunded points payment's points
back, once each, whichever DB its data mode writes. Real brokers (the dev broker and Apache
Kafka), real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.services.member.conftest import ADMIN, eventually
from tests.services.member.test_points import Pair, monolith, pair_in

# Dual writes on PostgreSQL commit in two phases (tests/conftest.py: two_phase).
pytestmark = pytest.mark.usefixtures("two_phase")


@pytest.fixture
def broker_pair(member_service, settings_for, bootstrap) -> Iterator[Pair]:
    with pair_in(
        member_service, settings_for, "dual", "member-service", kafka_bootstrap=bootstrap
    ) as pair:
        yield pair


def test_payments_earn_and_refunds_give_back_points_through_the_payment_events(broker_pair):
    pair = broker_pair
    member_id, token = pair.member()
    card = pair.pay(token, pair.order(token)["id"]).json()["data"]
    earned = card["points_earned"]
    assert eventually(lambda: pair.balance(member_id) == earned, timeout=20)

    pair.credit(member_id, pair.product()["price"])
    points = pair.pay(token, pair.order(token)["id"], "points").json()["data"]
    assert pair.balance(member_id) == earned  # the spend is the owner's answer, at once
    assert pair.refund(token, points["id"]).status_code == 200
    price = points["points_spent"]
    assert eventually(lambda: pair.balance(member_id) == earned + price, timeout=20)

    assert pair.ledger(member_id) == [
        ("earn", earned),
        ("earn", price),
        ("spend", -price),
        ("refund", price),
    ]
    # The spend, made before the payment existed, now names it (PaymentCompleted said which).
    with pair.owners()[-1].connect() as conn:
        spend = conn.execute(
            sa.text(
                "SELECT payment_id FROM point_ledger WHERE reason = 'spend' AND member_id = :m"
            ),
            {"m": member_id},
        ).scalar()
    assert spend == points["id"]
    pair.ledgers_match_balances()
    metrics = pair.service.http.get("/metrics").text
    assert 'shop_consumer_events_total{group="member-service",outcome="processed"} 3.0' in metrics
    parked = pair.service.http.get("/admin/events/parked", headers=ADMIN).json()["data"]
    assert parked == {"parked": []}


def test_a_payment_made_while_the_member_service_is_down_earns_its_points_when_it_is_back(
    member_service, settings_for, bootstrap
):
    with pair_in(
        member_service, settings_for, "shared", "local", kafka_bootstrap=bootstrap
    ) as pair:
        member_id, token = pair.member()
        assert pair.features(member_points="member-service").status_code == 200
        grpc_port = pair.settings.grpc_port
    # pair_in stopped both; the monolith comes back alone and takes a card payment.
    with monolith(pair.settings) as (http, app):
        pair.monolith, pair.app = http, app
        paid = pair.pay(token, pair.order(token)["id"])
        assert paid.status_code == 201, paid.text
        earned = paid.json()["data"]["points_earned"]
        with member_service(
            "shared",
            grpc_port=grpc_port,
            kafka_bootstrap=bootstrap,
            kafka_topic_prefix=pair.settings.kafka_topic_prefix,
        ) as service:
            pair.service = service
            assert eventually(lambda: pair.balance(member_id) == earned, timeout=20)
