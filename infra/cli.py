"""The `shop` command: run, explore and demonstrate every migration stage."""

from __future__ import annotations

import errno
import os
import socket
import time

import click

from gateway.cli import register as register_gateway_commands
from infra.devbroker.cli import broker
from infra.extractions import by_name
from infra.kafka.cli import kafka
from infra.load_cli import load
from infra.processes import PROCESSES, check_process_budgets
from infra.read_model_cli import read_model
from infra.scenario_cli import scenario
from infra.settings import SharedSettings, load_settings
from infra.stage_cli import stage
from infra.stages import STAGES
from libs.dualwrite.cli import direction_option, repair_option
from libs.dualwrite.cli import reconcile as reconcile_urls
from libs.observability import configure_logging, serve
from libs.timeouts import TimeoutBudgetError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Strangler Shop: a monolith migrated to microservices, stage by stage."""


@main.command()
@click.argument("name", type=click.Choice(sorted(PROCESSES)))
@click.option("--port", type=int, help="Listen on this port instead of the configured one.")
@click.option("--host", help="Listen on this address (default SHOP_HOST, 127.0.0.1).")
@click.option(
    "--wait-for-port",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Seconds to wait for the port while another process still holds it (a restart "
    "starts the new process while the old one drains).",
)
def run(name: str, port: int | None, host: str | None, wait_for_port: float) -> None:
    """Run one process in the foreground (SIGTERM or Ctrl-C stops it gracefully)."""
    spec = PROCESSES[name]
    settings = spec.load()
    configure_logging(name, settings.log_level, settings.log_json)
    try:
        check_process_budgets(name)
    except TimeoutBudgetError as exc:
        raise click.ClickException(str(exc)) from exc
    app = spec.build(settings)
    host, port = host or settings.host, port or spec.port(settings)
    try:
        sockets = [listening_socket(host, port, wait_for_port)] if wait_for_port else None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    serve(
        app,
        host=host,
        port=port,
        readiness=app.state.readiness,
        grace_seconds=settings.shutdown_grace_seconds,
        drain_delay=settings.drain_delay_seconds,
        sockets=sockets,
        trusted_proxies=settings.trusted_proxies,
    )


# What `shop run --wait-for-port` prints once it is built and only the port is missing.
LOADED = "loaded"


def listening_socket(host: str, port: int, wait: float) -> socket.socket:
    """A socket bound to host:port, retried while the address is in use for up to `wait`
    seconds: a restarted process is built (imports, settings, app) while the old one drains,
    and takes the port the moment it is free."""
    deadline = time.monotonic() + wait
    click.echo(f"{LOADED} (pid {os.getpid()}), waiting for {host}:{port}", err=True)
    while True:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
            continue
        # Listening at once: a connection made while the app starts waits in the backlog
        # instead of being refused.
        sock.listen(2048)
        return sock


@main.command()
@click.option("--workers", default=16, show_default=True, help="Concurrent customers.")
@click.option("--rounds", default=10, show_default=True, help="Orders each customer tries.")
@click.option(
    "--stage-seconds",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds of load in each stage before its checks.",
)
def demo(workers: int, rounds: int, stage_seconds: float) -> None:
    """Start the system on a fresh embedded data dir, drive it, check invariants, report."""
    from infra.demo.run import run_demo

    raise SystemExit(run_demo(workers, rounds, stage_seconds))


@main.command()
@click.option("--workers", default=6, show_default=True, help="Concurrent customers.")
@click.option(
    "--down-seconds",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds each killed process stays down before it is started again.",
)
@click.option(
    "--back-seconds",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds of load on the restarted process before the next kill.",
)
def chaos(workers: int, down_seconds: float, back_seconds: float) -> None:
    """kill -9 each process in turn under load at the last stage; check nothing was lost."""
    from infra.chaos import main as run_chaos

    raise SystemExit(run_chaos(workers, down_seconds, back_seconds))


@main.command()
@click.option(
    "--stage",
    type=click.IntRange(0, len(STAGES) - 1),
    help="Move the system to this stage once it is up (every stage before it in turn; a "
    "ramp's weights in one jump, as there is no traffic to judge).",
)
def up(stage: int | None) -> None:
    """Start every process on its configured port; Ctrl-C stops them all gracefully."""
    from infra.up import run_up

    raise SystemExit(run_up(load_settings(SharedSettings), stage))


# The data migrations `shop reconcile` knows: one per declared extraction.
MIGRATIONS = by_name()


@main.command()
@click.argument("migration", type=click.Choice(sorted(MIGRATIONS)))
@direction_option
@repair_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def reconcile(ctx: click.Context, migration: str, direction: str, repair: bool, as_json: bool):
    """Compare a migration's two DBs (counts, chunk checksums, sample rows); exit 1 on drift."""
    extraction = MIGRATIONS[migration]
    service = PROCESSES[extraction.service.name].load()
    ctx.invoke(
        reconcile_urls,
        spec_path=extraction.spec,
        legacy_url=load_settings(SharedSettings).legacy_db_url,
        new_url=service.db,
        direction=direction,
        repair=repair,
        chunk_size=1000,
        as_json=as_json,
    )


main.add_command(broker)
main.add_command(kafka)
main.add_command(load)
main.add_command(stage)
main.add_command(scenario)
main.add_command(read_model)
register_gateway_commands(main)
