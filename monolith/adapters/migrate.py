"""Bring the legacy DB to the newest schema (the prestart step), then seed demo products."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent.parent


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    _run(engine, command.upgrade, revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    _run(engine, command.downgrade, revision)


def _run(engine: sa.Engine, step, revision: str) -> None:
    config = Config(str(HERE / "alembic.ini"))
    config.set_main_option("script_location", str(HERE / "migrations"))
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        step(config, revision)
        conn.commit()
