"""`shop stage list | show [N] | apply N`: the migration stages (infra/stages.py), read and
applied to the running system through its admin APIs."""

from __future__ import annotations

import click

from infra.settings import SharedSettings, load_settings
from infra.stages import STAGES, Endpoints, RampOptions, StageEngine, StageRefused, configuration


def _engine(ramp: RampOptions | None = None) -> StageEngine:
    token = load_settings(SharedSettings).admin_token
    return StageEngine(Endpoints.from_registry(token), ramp or RampOptions(), say=click.echo)


@click.group()
def stage() -> None:
    """The migration stages: list them, show one or the live one, apply one live."""


@stage.command("list")
def stage_list() -> None:
    """Every stage with its traffic and data."""
    width = max(len(s.name) for s in STAGES)
    for s in STAGES:
        click.echo(f"{s.number}  {s.name:<{width}} traffic: {s.traffic}")
        click.echo(f"   {'':<{width}} data:    {s.data}")


@stage.command("show")
@click.argument("number", type=click.IntRange(0, len(STAGES) - 1), required=False)
def stage_show(number: int | None) -> None:
    """Stage NUMBER's whole configuration; without NUMBER, the stage the system is at."""
    if number is not None:
        _describe(number)
        return
    engine = _engine()
    try:
        observed = engine.observe()
        current = engine.current(observed)
        if all(value is None for value in observed.values()):
            raise click.ClickException(
                f"no admin API answers ({engine.endpoints.urls['gateway']} and the rest): "
                "is the system up? Start it with `shop up`."
            )
        if current is None:
            closest = engine.closest(observed)
            click.echo(f"the system is at no declared stage; against stage {closest}:")
            for line in engine.differences(closest, observed):
                click.echo(f"  {line}")
            raise SystemExit(1)
        click.echo(f"the system is at stage {current}")
        _describe(current)
    finally:
        engine.close()


def _describe(number: int) -> None:
    s = STAGES[number]
    click.echo(f"stage {s.number}: {s.name}\n  traffic: {s.traffic}\n  data:    {s.data}")
    click.echo(f"  runs:    {', '.join(s.needs)}")
    if s.watch:
        click.echo(f"  watch:   {s.watch}")
    if number:
        click.echo(f"  entering it from stage {number - 1}, in this order:")
        for step in s.steps:
            click.echo(f"    {step.describe()}")
    click.echo("  whole configuration:")
    for step in configuration(number).values():
        click.echo(f"    {step.describe()}")


@stage.command("apply")
@click.argument("number", type=click.IntRange(0, len(STAGES) - 1))
@click.option("--force", is_flag=True, help="Walk through the stages in between.")
@click.option("--ramp-interval", type=float, help="Seconds the ramp watches each step.")
@click.option("--ramp-min-requests", type=int, help="Requests each side needs per ramp step.")
@click.option("--ramp-p99-ratio", type=float, help="How many times the baseline's p99 may be.")
@click.option("--ramp-p99-slack-ms", type=float, help="... unless within this many ms of it.")
@click.option(
    "--ramp-max-wait-intervals",
    type=click.IntRange(min=1),
    help="Intervals a step may stay inconclusive (too few requests) before the ramp stalls.",
)
def stage_apply(
    number: int,
    force: bool,
    ramp_interval: float | None,
    ramp_min_requests: int | None,
    ramp_p99_ratio: float | None,
    ramp_p99_slack_ms: float | None,
    ramp_max_wait_intervals: int | None,
) -> None:
    """Move the running system to stage NUMBER, one stage at a time, live.

    Refuses to skip a stage unless --force; a step a process refuses (drift blocking the
    cutover, a ramp rolling back) undoes the steps before it and exits 1."""
    engine = _engine(
        RampOptions(
            ramp_interval,
            ramp_min_requests,
            p99_ratio=ramp_p99_ratio,
            p99_slack_ms=ramp_p99_slack_ms,
            max_wait_intervals=ramp_max_wait_intervals,
        )
    )
    try:
        reached = engine.apply(number, force=force)
    except StageRefused as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.close()
    click.echo(f"at stage {reached}: {STAGES[reached].name}")
