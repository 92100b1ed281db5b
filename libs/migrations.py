"""Alembic, the same way for every database a process owns: each one keeps its own
`migrations/` folder and calls these two functions instead of carrying its own copies."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext


def upgrade(engine: sa.Engine, package_dir: Path, revision: str = "head") -> None:
    """Bring the DB to `revision` (the prestart step goes to head). `package_dir` holds
    alembic.ini and migrations/."""
    _run(engine, package_dir, command.upgrade, revision)


def downgrade(engine: sa.Engine, package_dir: Path, revision: str) -> None:
    _run(engine, package_dir, command.downgrade, revision)


def _run(engine: sa.Engine, package_dir: Path, step, revision: str) -> None:
    config = Config(str(package_dir / "alembic.ini"))
    config.set_main_option("script_location", str(package_dir / "migrations"))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        step(config, revision)
        conn.commit()


def run_env(context: EnvironmentContext, metadata: sa.MetaData) -> None:
    """The body of a migrations/env.py: on the connection `upgrade` hands in, or on
    `sqlalchemy.url` when run from the alembic command line."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(context, connection, metadata)
        return
    config = context.config
    engine = sa.engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=sa.pool.NullPool,
    )
    with engine.connect() as conn:
        _migrate(context, conn, metadata)


def _migrate(context: EnvironmentContext, connection: sa.Connection, metadata) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
