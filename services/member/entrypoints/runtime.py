"""What the member service runs while it lives, built in its lifespan: both engines, the
member DB's migrations, the data mode with its writer and sync job, the gRPC server, and the
consumer of the payment events that earns and refunds points."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from infra.settings import Settings
from libs.auth import TokenIssuer
from libs.db import make_engine
from libs.dualwrite import DualWriter, Mode, ModeSwitch, SyncJob, capture, frozen_tables, twophase
from libs.events.consumer import ConsumerRunner, KeyedHandler
from libs.events.inbox import Inbox
from services.member.adapters.data import MemberData
from services.member.adapters.migrate import upgrade
from services.member.adapters.migration import MEMBERS
from services.member.adapters.tables import events
from services.member.entrypoints.grpc_server import start_grpc
from services.member.service_layer import points

log = logging.getLogger(__name__)

PAYMENTS_TOPIC = "shop.payments"  # docs/contracts.md, events
CONSUMER_GROUP = "member-service"
TOPIC_PARTITIONS = 3


@dataclass
class MemberRuntime:
    data: MemberData
    consumer: ConsumerRunner


@asynccontextmanager
async def member_runtime(
    settings: Settings, tokens: TokenIssuer, registry: CollectorRegistry
) -> AsyncIterator[MemberRuntime]:
    legacy, new = make_engine(settings.legacy_db_url), make_engine(settings.member_db)
    _require_legacy_schema(legacy)
    upgrade(new)
    switch = ModeSwitch(Mode(settings.member_data_mode))
    # The sync job registers its hook first: on shared -> dual it drains before anything else
    # shows the new mode.
    sync_job = SyncJob(MEMBERS, legacy, new, registry=registry, switch=switch)
    writer = DualWriter(MEMBERS, legacy, new, switch=switch, registry=registry)
    data, stop = MemberData(writer), asyncio.Event()
    consumer = ConsumerRunner(
        settings.kafka_bootstrap_servers,
        CONSUMER_GROUP,
        [settings.kafka_topic_prefix + PAYMENTS_TOPIC],
        new,
        Inbox(events),
        KeyedHandler(lambda event: points.apply_payment_event(event, data)),
        group_instance_id=settings.member_group_instance_id,
        topic_partitions=TOPIC_PARTITIONS,
        registry=registry,
    )
    try:
        _prepare(writer, switch.mode)
        grpc_server = await start_grpc(data, tokens, settings.host, settings.member_grpc_port)
        # Runs in every mode; outside shared mode each batch is skipped, so a step back from
        # dual to shared resumes the copying by itself.
        sync = asyncio.create_task(sync_job.run(interval=settings.member_sync_interval, stop=stop))
        await consumer.start()  # does not wait for the broker
        try:
            yield MemberRuntime(data, consumer)
        finally:
            stop.set()
            await grpc_server.stop(settings.member_grpc_grace_seconds)
            await consumer.stop()  # finishes and commits its batch
            await sync
    finally:
        writer.close()
        legacy.dispose()
        new.dispose()


class FrozenLegacyTables(RuntimeError):
    pass


class LegacySchemaMissing(RuntimeError):
    pass


def _require_legacy_schema(legacy: sa.Engine) -> None:
    inspector = sa.inspect(legacy)
    needed = {capture.changes.name, twophase.decisions.name}
    missing = sorted(needed - set(inspector.get_table_names()))
    if "point_ledger" in inspector.get_table_names():
        columns = {c["name"] for c in inspector.get_columns("point_ledger")}
        missing += [] if "spend_key" in columns else ["point_ledger.spend_key"]
    if missing:
        raise LegacySchemaMissing(
            f"the legacy DB has no {', '.join(missing)}: start the monolith first, its "
            "migrations install the change capture and decision log (0002) and the ledger's "
            "spend keys (0004)"
        )


def _prepare(writer: DualWriter, mode: Mode) -> None:
    """Refuse a start-up mode the legacy DB contradicts; settle what a crash may have left
    in doubt before the first write."""
    if mode is not Mode.SINGLE:
        _refuse_frozen_legacy(writer, mode)
    if mode is Mode.DUAL:
        writer.check()
    if mode is not Mode.SINGLE:
        report = writer.recover()
        if report.committed or report.rolled_back:
            log.warning("in-doubt dual writes resolved: %s", report)


def _refuse_frozen_legacy(writer: DualWriter, mode: Mode) -> None:
    # A service restarted in shared or dual mode after single write would write tables
    # that refuse every write, and read rows single write never reached.
    with writer.legacy.connect() as conn:
        frozen = frozen_tables(conn, writer.spec)
    if frozen:
        raise FrozenLegacyTables(
            f"cannot start in {mode} mode: the legacy tables {frozen} are frozen by single "
            "write; start in single mode (and switch to dual to roll back)"
        )
