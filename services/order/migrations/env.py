"""Alembic environment for the order DB (see libs/migrations.py)."""

from alembic import context

from libs.migrations import run_env
from services.order.adapters.tables import metadata

run_env(context, metadata)
