"""The `shop` command: run, explore and demonstrate every migration stage."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Strangler Shop: a monolith migrated to microservices, stage by stage."""


from infra.devbroker.cli import broker  # noqa: E402

main.add_command(broker)
