"""Bring the order DB to the newest schema (the service's prestart step)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from libs import migrations

HERE = Path(__file__).resolve().parent.parent


def upgrade(engine: sa.Engine) -> None:
    migrations.upgrade(engine, HERE)
