"""The `shop` command: run, explore and demonstrate every migration stage."""

from __future__ import annotations

import click

from infra.processes import PROCESSES, check_process_budgets
from infra.settings import Settings
from libs.observability import configure_logging, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Strangler Shop: a monolith migrated to microservices, stage by stage."""


@main.command()
@click.argument("name", type=click.Choice(sorted(PROCESSES)))
@click.option("--port", type=int, help="Listen on this port instead of the configured one.")
@click.option("--host", help="Listen on this address (default SHOP_HOST, 127.0.0.1).")
def run(name: str, port: int | None, host: str | None) -> None:
    """Run one process in the foreground (SIGTERM or Ctrl-C stops it gracefully)."""
    settings = Settings()
    configure_logging(name, settings.log_level, settings.log_json)
    check_process_budgets(name, settings)
    spec = PROCESSES[name]
    app = spec.build(settings)
    serve(
        app,
        host=host or settings.host,
        port=port or spec.port(settings),
        readiness=app.state.readiness,
        grace_seconds=settings.shutdown_grace_seconds,
        drain_delay=settings.drain_delay_seconds,
    )


@main.command()
@click.option("--workers", default=16, show_default=True, help="Concurrent customers.")
@click.option("--rounds", default=10, show_default=True, help="Orders each customer tries.")
def demo(workers: int, rounds: int) -> None:
    """Start the system on a fresh embedded data dir, drive it, check invariants, report."""
    from infra.demo.run import run_demo

    raise SystemExit(run_demo(workers, rounds))


from gateway.cli import register as register_gateway_commands  # noqa: E402

register_gateway_commands(main)
