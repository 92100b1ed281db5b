"""What the member service runs beside the generic extraction runtime (libs/extraction): its
gRPC server, the relay of its outbox (the member events, once they commit in the member DB),
and the consumer of the payment events that earns and refunds points."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from infra.settings import ServiceSettings
from libs.events.consumer import ConsumerRunner, KeyedHandler
from libs.events.envelope import Event
from libs.events.inbox import Inbox
from libs.events.relay import Relay
from libs.extraction import ExtractionData
from services.member.adapters.tables import events
from services.member.entrypoints.grpc_server import start_grpc
from services.member.service_layer import points
from services.member.service_layer.members import outbox

PAYMENTS_TOPIC = "shop.payments"  # docs/contracts.md, events
CONSUMER_GROUP = "member-service"
TOPIC_PARTITIONS = 3


def member_parts(settings: ServiceSettings):
    """The lifespan part the member service adds: started once its data door exists, stopped
    (gRPC first, then the consumer, which finishes and commits its batch, then the relay,
    which publishes what it can) before it closes.

    The relay publishes the member DB's outbox in every mode: while the service shares the
    legacy DB its events commit there and the monolith's relay publishes them, so this one
    finds nothing until dual write begins."""

    @asynccontextmanager
    async def serve(app: FastAPI, data: ExtractionData) -> AsyncIterator[None]:
        registry = app.state.metrics.registry
        relay = Relay(
            data.writer.new,
            outbox,
            settings.kafka_bootstrap_servers,
            process="member-service",
            topic_prefix=settings.kafka_topic_prefix,
            registry=registry,
        )
        app.state.relay = relay

        def apply(event: Event) -> bool:
            applied = points.apply_payment_event(event, data)
            if applied:
                relay.notify()  # its points change committed an event
            return applied

        consumer = ConsumerRunner(
            settings.kafka_bootstrap_servers,
            CONSUMER_GROUP,
            [settings.kafka_topic_prefix + PAYMENTS_TOPIC],
            data.writer.new,
            Inbox(events),
            KeyedHandler(apply),
            group_instance_id=settings.group_instance_id,
            topic_partitions=TOPIC_PARTITIONS,
            registry=registry,
        )
        app.state.consumers = [consumer]
        await relay.start()  # neither waits for the broker
        try:
            grpc_server = await start_grpc(data, settings.host, settings.grpc_port, relay.notify)
            await consumer.start()
            try:
                yield
            finally:
                await grpc_server.stop(settings.grpc_grace_seconds)
                await consumer.stop()
        finally:
            await relay.stop(settings.shutdown_grace_seconds)

    return serve
