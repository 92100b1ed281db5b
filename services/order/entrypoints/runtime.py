"""What the order service runs beside the generic extraction runtime (libs/extraction): its
gRPC server, the relay of its outbox, the consumer of the payment events that pays and
refunds orders, and the recovery of unfinished and unpaid orders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from infra.processes import urls
from infra.settings import OrderServiceSettings
from libs.events.consumer import ConsumerRunner, KeyedHandler
from libs.events.inbox import Inbox
from libs.events.relay import Relay
from libs.extraction import ExtractionData, every
from services.order.adapters.tables import events
from services.order.catalogue import CatalogueClient
from services.order.entrypoints.grpc_server import start_grpc
from services.order.service_layer import orders

PAYMENTS_TOPIC = "shop.payments"  # docs/contracts.md, events
CONSUMER_GROUP = "order-service"
TOPIC_PARTITIONS = 3


def order_parts(settings: OrderServiceSettings):
    """Started once the data door exists; stopped in reverse (gRPC first, so no new work
    arrives, then the recovery, the consumer, which finishes and commits its batch, and the
    relay, which publishes what it can) before it closes."""

    @asynccontextmanager
    async def serve(app: FastAPI, data: ExtractionData) -> AsyncIterator[None]:
        registry = app.state.metrics.registry
        catalogue = CatalogueClient(
            urls()["monolith"], settings.admin_token, settings.call_timeouts
        )
        app.state.catalogue = catalogue
        relay = Relay(
            data.writer.new,
            orders.outbox,
            settings.kafka_bootstrap_servers,
            process="order-service",
            topic_prefix=settings.kafka_topic_prefix,
            registry=registry,
        )
        app.state.relay = relay
        consumer = ConsumerRunner(
            settings.kafka_bootstrap_servers,
            CONSUMER_GROUP,
            [settings.kafka_topic_prefix + PAYMENTS_TOPIC],
            data.writer.new,
            Inbox(events),
            KeyedHandler(lambda event: orders.apply_payment_event(event, data)),
            group_instance_id=settings.group_instance_id,
            topic_partitions=TOPIC_PARTITIONS,
            registry=registry,
        )
        app.state.consumers = [consumer]

        def recover() -> None:
            orders.recover(
                data,
                catalogue,
                stale_after=settings.stale_seconds,
                expire_after=settings.unpaid_order_seconds,
            )
            relay.notify()

        await relay.start()  # neither waits for the broker
        await consumer.start()
        grpc_server = await start_grpc(data, settings.host, settings.grpc_port)
        try:
            async with every(settings.recovery_interval, recover, "order recovery"):
                try:
                    yield
                finally:
                    await grpc_server.stop(settings.grpc_grace_seconds)
        finally:
            await consumer.stop()
            await relay.stop(settings.shutdown_grace_seconds)
            catalogue.close()

    return serve
