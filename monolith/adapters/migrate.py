"""Bring the legacy DB to the newest schema (the prestart step)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from libs import migrations

HERE = Path(__file__).resolve().parent.parent


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    migrations.upgrade(engine, HERE, revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    migrations.downgrade(engine, HERE, revision)
