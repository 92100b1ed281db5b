"""`shop scenario NAME`: one Kafka lesson, run on the dev broker (started here for the run) or
on the Kafka that SHOP_KAFKA_BOOTSTRAP names."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

import click

from infra.scenarios import SCENARIOS, load
from infra.supervisor import Supervisor, free_port


@click.command()
@click.argument("name", type=click.Choice(SCENARIOS))
def scenario(name: str) -> None:
    """Run one of the talk's Kafka lessons and print what it measured, side by side."""
    from infra.settings import load_settings

    settings = load_settings()
    # The clients' own warnings (a heartbeat during a rebalance, a new topic's first leader
    # election) are what the lessons show happening; the table says it better than the log.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    module = load(name)
    click.echo(f"scenario {name}: {module.DESCRIPTION}")
    if not settings.embedded_broker:
        click.echo(f"broker: {settings.kafka_bootstrap_servers} (SHOP_KAFKA_BOOTSTRAP)")
        raise SystemExit(asyncio.run(module.run(settings.kafka_bootstrap_servers)))
    with tempfile.TemporaryDirectory(prefix="scenario-") as workdir:
        supervisor = Supervisor({}, Path(workdir) / "logs")
        broker = supervisor.start_broker(free_port(), Path(workdir) / "broker")
        try:
            supervisor.wait_ready()
            click.echo(f"broker: dev broker on {broker.url}, started for this run")
            code = asyncio.run(module.run(broker.url))
        finally:
            supervisor.stop()
    raise SystemExit(code)
