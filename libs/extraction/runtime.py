"""What an extracted service runs while it lives, whatever its tables: both engines, its own
DB's migrations, the data mode with its writer and batch sync job, and the start-up checks
that refuse a start the legacy DB contradicts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from libs.db import make_engine
from libs.dualwrite import (
    DualWriter,
    MigrationSpec,
    Mode,
    ModeSwitch,
    SyncJob,
    capture,
    frozen_tables,
    twophase,
)
from libs.dualwrite.sync_job import sync_cursor
from libs.extraction.data import ExtractionData
from libs.state_file import StateFile

log = logging.getLogger(__name__)


class FrozenLegacyTables(RuntimeError):
    pass


class LegacySchemaMissing(RuntimeError):
    pass


class NewSchemaMissing(RuntimeError):
    pass


@asynccontextmanager
async def extraction_runtime(
    spec: MigrationSpec,
    legacy_url: str,
    new_url: str,
    *,
    upgrade: Callable[[sa.Engine], None],
    mode: str,
    sync_interval: float,
    registry: CollectorRegistry,
    mode_file: Path | None = None,
) -> AsyncIterator[ExtractionData]:
    """Yields the service's data door; the sync job runs until the block ends. With
    `mode_file`, the data mode last switched to live is kept there and resumed on start, over
    `mode` (which is only where a service with no history starts)."""
    state = StateFile(mode_file) if mode_file is not None else None
    mode = resumed_mode(state, mode)
    legacy, new = make_engine(legacy_url), make_engine(new_url)
    try:
        require_legacy_schema(legacy, spec)
        upgrade(new)
        require_new_schema(new, spec)
        switch = ModeSwitch(Mode(mode))
        # The sync job registers its hook first: on shared -> dual it drains before anything
        # else shows the new mode.
        sync_job = SyncJob(spec, legacy, new, registry=registry, switch=switch)
        writer = DualWriter(spec, legacy, new, switch=switch, registry=registry)
        try:
            prepare(writer, switch.mode)
            stop = asyncio.Event()
            # Runs in every mode; outside shared mode each batch is skipped, so a step back
            # from dual to shared resumes the copying by itself.
            sync = asyncio.create_task(sync_job.run(interval=sync_interval, stop=stop))
            try:
                yield ExtractionData(writer, state)
            finally:
                stop.set()
                await sync
        finally:
            writer.close()
    finally:
        legacy.dispose()
        new.dispose()


def resumed_mode(state: StateFile | None, configured: str) -> str:
    """The mode a restart resumes: the one last switched to, when there is one. A process
    restarted at single write would otherwise start in its configured (shared) mode and be
    refused by the frozen legacy tables; one restarted at dual write would quietly step back
    to shared."""
    saved = state.load() if state is not None else None
    mode = saved.get("mode") if saved else None
    if mode not in {m.value for m in Mode}:
        return configured
    if mode != configured:
        log.warning("resuming data mode %s, the last switched to (configured %s)", mode, configured)
    return str(mode)


def require_legacy_schema(legacy: sa.Engine, spec: MigrationSpec) -> None:
    """The legacy DB must hold the change capture and the decision log, and every table and
    column the spec moves: the monolith's migrations create them, so it starts first."""
    inspector = sa.inspect(legacy)
    present = set(inspector.get_table_names())
    missing = sorted({capture.changes.name, twophase.decisions.name} - present)
    for table in spec.tables:
        name = table.legacy.name
        if name not in present:
            missing.append(name)
            continue
        columns = {c["name"] for c in inspector.get_columns(name)}
        missing += [f"{name}.{c.name}" for c in table.legacy.columns if c.name not in columns]
    if missing:
        raise LegacySchemaMissing(
            f"the legacy DB has no {', '.join(missing)}: start the monolith first (its "
            f"migrations create what the {spec.name} extraction moves and the change capture)"
        )


def require_new_schema(new: sa.Engine, spec: MigrationSpec) -> None:
    """After the service's own migrations: its DB holds the tables the spec moves and the
    sync job's cursor (`install_sync_cursor`, called from one of those migrations)."""
    present = set(sa.inspect(new).get_table_names())
    needed = [t.new.name for t in spec.tables] + [sync_cursor.name]
    missing = [name for name in needed if name not in present]
    if missing:
        raise NewSchemaMissing(
            f"the service's DB has no {', '.join(missing)} after its migrations: they must "
            "create the tables it takes over and call libs.dualwrite.install_sync_cursor"
        )


def prepare(writer: DualWriter, mode: Mode) -> None:
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


@asynccontextmanager
async def every(seconds: float, work: Callable[[], object], name: str) -> AsyncIterator[None]:
    """Runs `work` in a thread every `seconds` until the block ends (a recovery round, a
    sweep); a round that fails is logged and the next one runs anyway. The block's end waits
    for the round under way."""
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(work)
            except Exception:  # the loop must outlive a failed round; the next one retries
                log.exception("%s: round failed", name)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        stop.set()
        await task
