"""`shop broker`: run the dev broker in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from infra.devbroker.config import BrokerConfig
from infra.devbroker.server import Broker


def _default_data_dir() -> Path:
    from infra.settings import SharedSettings, load_settings  # only without --data-dir

    return load_settings(SharedSettings).data_dir / "broker"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="SHOP_BROKER_HOST")
@click.option("--port", default=9092, show_default=True, envvar="SHOP_BROKER_PORT")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SHOP_BROKER_DATA_DIR",
    help="Where topics and offsets live.  [default: $SHOP_DATA_DIR/broker]",
)
@click.option(
    "--default-partitions",
    default=3,
    show_default=True,
    envvar="SHOP_BROKER_DEFAULT_PARTITIONS",
    help="Partitions of an auto-created topic.",
)
@click.option(
    "--group-min-session-timeout-ms",
    default=6000,
    show_default=True,
    envvar="SHOP_BROKER_GROUP_MIN_SESSION_TIMEOUT_MS",
    help="Kafka's group.min.session.timeout.ms: shorter client session timeouts are refused.",
)
@click.option(
    "--max-request-bytes",
    default=104_857_600,
    show_default=True,
    envvar="SHOP_BROKER_MAX_REQUEST_BYTES",
    help="Kafka's socket.request.max.bytes: larger requests are refused.",
)
def broker(
    host: str,
    port: int,
    data_dir: Path | None,
    default_partitions: int,
    group_min_session_timeout_ms: int,
    max_request_bytes: int,
) -> None:
    """Run the Kafka-protocol dev broker (one node, no JVM, no Docker)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = BrokerConfig(
        data_dir=data_dir or _default_data_dir(),
        host=host,
        port=port,
        default_partitions=default_partitions,
        group_min_session_timeout_ms=group_min_session_timeout_ms,
        max_request_bytes=max_request_bytes,
    )
    asyncio.run(_serve(config))


async def _serve(config: BrokerConfig) -> None:
    broker = Broker(config)
    await broker.start()
    click.echo(f"dev broker ready on {config.advertised}:{broker.port} (data in {config.data_dir})")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await broker.stop()
    click.echo("dev broker stopped; logs and offsets flushed")
