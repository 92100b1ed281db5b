"""What the payment service runs beside the generic extraction runtime (libs/extraction): its
clients of the order and member services (gRPC), its gRPC server, the relay of its outbox and
the recovery of the points debits a dead request left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from infra.processes import grpc_target
from infra.settings import ServiceSettings
from libs.events.relay import Relay
from libs.extraction import ExtractionData, every
from services.member.client import BlockingMemberClient
from services.member.debits import MemberDebits
from services.order.client import BlockingOrderClient
from services.payment.entrypoints.grpc_server import start_grpc
from services.payment.service_layer.payments import Payments, Spends, outbox


def payment_parts(settings: ServiceSettings):
    """Started once the data door exists; stopped in reverse (gRPC first, then the recovery,
    then the relay, which publishes what it can) before it closes."""

    @asynccontextmanager
    async def serve(app: FastAPI, data: ExtractionData) -> AsyncIterator[None]:
        registry = app.state.metrics.registry
        orders = BlockingOrderClient(grpc_target("order-service"), timeout=settings.call_timeout)
        members = BlockingMemberClient(grpc_target("member-service"), timeout=settings.call_timeout)
        debits = MemberDebits(Spends(data), members, registry)
        payments = Payments(data, orders, debits)
        app.state.payments = payments
        relay = Relay(
            data.writer.new,
            outbox,
            settings.kafka_bootstrap_servers,
            process="payment-service",
            topic_prefix=settings.kafka_topic_prefix,
            registry=registry,
        )
        app.state.relay = relay
        await relay.start()  # does not wait for the broker
        grpc_server = await start_grpc(payments, settings.host, settings.grpc_port)
        recover = lambda: debits.recover(settings.stale_seconds)  # noqa: E731
        try:
            async with every(settings.recovery_interval, recover, "points debit recovery"):
                try:
                    yield
                finally:
                    await grpc_server.stop(settings.grpc_grace_seconds)
        finally:
            await relay.stop(settings.shutdown_grace_seconds)
            orders.close()
            members.close()

    return serve
