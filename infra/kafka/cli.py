"""`shop kafka`: a real single-node Apache Kafka (KRaft) in the foreground, until SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from infra.kafka.runtime import KafkaNode, KafkaUnavailable, installed_jars


@click.command()
@click.option("--port", type=int, help="Broker port.  [default: SHOP_KAFKA_PORT, 9192]")
@click.option("--controller-port", type=int, help="KRaft controller port.  [default: port + 1]")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="KRaft log dir, formatted on first use.  [default: $SHOP_DATA_DIR/kafka]",
)
@click.option("--fetch-only", is_flag=True, help="Fetch the jars into the cache and exit.")
def kafka(
    port: int | None, controller_port: int | None, data_dir: Path | None, fetch_only: bool
) -> None:
    """Run Apache Kafka from Maven Central's jars (needs Java 17+ and, once, Maven)."""
    from infra.settings import load_settings

    settings = load_settings()
    try:
        lib = installed_jars(settings.kafka_home, settings.kafka_version, echo=click.echo)
    except KafkaUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    if fetch_only:
        click.echo(f"Apache Kafka {settings.kafka_version} jars in {lib}")
        return
    node = KafkaNode(
        lib,
        data_dir or settings.data_dir / "kafka",
        port=port or settings.kafka_port,
        controller_port=controller_port,
        host=settings.host,
    )
    sys.exit(_serve(node, settings.kafka_version))


def _serve(node: KafkaNode, version: str) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    node.start(stdout=sys.stdout)
    try:
        took = node.wait_ready()
    except KafkaUnavailable as exc:
        node.stop()
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Apache Kafka {version} ready on {node.bootstrap} in {took:.1f}s "
        f"(KRaft, data in {node.data_dir}); SHOP_KAFKA_BOOTSTRAP={node.bootstrap} points "
        "the shop at it"
    )
    while not stop.wait(0.5):
        if node.process is not None and node.process.poll() is not None:
            click.echo(f"Apache Kafka exited by itself with code {node.process.returncode}")
            return 1
    code = node.stop()
    click.echo("Apache Kafka stopped" + (" cleanly" if code == 0 else f" (exit {code})"))
    return 0 if code == 0 else 1
