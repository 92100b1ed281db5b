"""Alembic environment for the payment DB (see libs/migrations.py)."""

from alembic import context

from libs.migrations import run_env
from services.payment.adapters.tables import metadata

run_env(context, metadata)
