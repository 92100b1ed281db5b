"""`reconcile`: compare (and optionally repair) the legacy and new DB of one migration.
Exit status 1 when drift is found (or remains after --repair), so CI and the stage engine
can gate on it."""

from __future__ import annotations

import importlib
import json

import click
import sqlalchemy as sa

from libs.db.sqlite import sqlite_engine
from libs.dualwrite.reconcile import Reconciler
from libs.dualwrite.spec import MigrationSpec


def load_spec(path: str) -> MigrationSpec:
    module, _, attribute = path.partition(":")
    spec = getattr(importlib.import_module(module), attribute or "SPEC")
    if not isinstance(spec, MigrationSpec):
        raise click.BadParameter(f"{path} is not a MigrationSpec", param_hint="--spec")
    return spec


def _engine(url: str) -> sa.Engine:
    return sqlite_engine(url) if url.startswith("sqlite") else sa.create_engine(url)


direction_option = click.option(
    "--direction",
    type=click.Choice(["legacy->new", "new->legacy"]),
    default="legacy->new",
    show_default=True,
    help="Which DB is the source of truth (new->legacy after single write).",
)
repair_option = click.option(
    "--repair", is_flag=True, help="Copy the source's rows over drifting chunks."
)


@click.command("reconcile")
@click.option("--spec", "spec_path", required=True, help="module:ATTRIBUTE of a MigrationSpec")
@click.option("--legacy-url", required=True, help="SQLAlchemy URL of the legacy DB")
@click.option("--new-url", required=True, help="SQLAlchemy URL of the new DB")
@direction_option
@repair_option
@click.option("--chunk-size", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def reconcile(
    spec_path: str,
    legacy_url: str,
    new_url: str,
    direction: str,
    repair: bool,
    chunk_size: int,
    as_json: bool,
) -> None:
    """Compare the moving tables row by row; exit 1 on drift."""
    spec = load_spec(spec_path)
    legacy, new = _engine(legacy_url), _engine(new_url)
    source, target = (legacy, new) if direction == "legacy->new" else (new, legacy)
    try:
        reconciler = Reconciler(spec, source, target, direction=direction, chunk_size=chunk_size)
        report = reconciler.repair() if repair else reconciler.check()
        _show(report, as_json)
        if repair and report.has_drift:
            report = reconciler.check()
            _show(report, as_json)
    finally:
        legacy.dispose()
        new.dispose()
    raise SystemExit(1 if report.has_drift else 0)


def _show(report, as_json: bool) -> None:
    click.echo(json.dumps(report.to_dict(), default=str) if as_json else report.render())


if __name__ == "__main__":
    reconcile()
