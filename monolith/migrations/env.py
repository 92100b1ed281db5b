"""Alembic environment for the legacy DB (see libs/migrations.py)."""

from alembic import context

from libs.migrations import run_env
from monolith.adapters.tables import metadata

run_env(context, metadata)
