"""Alembic environment for the member DB (see libs/migrations.py)."""

from alembic import context

from libs.migrations import run_env
from services.member.adapters.tables import metadata

run_env(context, metadata)
