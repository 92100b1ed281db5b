"""What the member service runs beside the generic extraction runtime (libs/extraction): its
gRPC server, and the consumer of the payment events that earns and refunds points."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from infra.settings import ServiceSettings
from libs.events.consumer import ConsumerRunner, KeyedHandler
from libs.events.inbox import Inbox
from libs.extraction import ExtractionData
from services.member.adapters.tables import events
from services.member.entrypoints.grpc_server import start_grpc
from services.member.service_layer import points

PAYMENTS_TOPIC = "shop.payments"  # docs/contracts.md, events
CONSUMER_GROUP = "member-service"
TOPIC_PARTITIONS = 3


def member_parts(settings: ServiceSettings):
    """The lifespan part the member service adds: started once its data door exists, stopped
    (gRPC first, then the consumer, which finishes and commits its batch) before it closes."""

    @asynccontextmanager
    async def serve(app: FastAPI, data: ExtractionData) -> AsyncIterator[None]:
        consumer = ConsumerRunner(
            settings.kafka_bootstrap_servers,
            CONSUMER_GROUP,
            [settings.kafka_topic_prefix + PAYMENTS_TOPIC],
            data.writer.new,
            Inbox(events),
            KeyedHandler(lambda event: points.apply_payment_event(event, data)),
            group_instance_id=settings.group_instance_id,
            topic_partitions=TOPIC_PARTITIONS,
            registry=app.state.metrics.registry,
        )
        app.state.consumers = [consumer]
        grpc_server = await start_grpc(data, settings.host, settings.grpc_port)
        await consumer.start()  # does not wait for the broker
        try:
            yield
        finally:
            await grpc_server.stop(settings.grpc_grace_seconds)
            await consumer.stop()

    return serve
