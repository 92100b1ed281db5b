"""`shop read-model status|rebuild`: what the read model serves, and a rebuild from the log.

`rebuild` asks the running read model (its admin API) to fill a fresh generation of views
from the topics' earliest offsets and swap it in once caught up; the old generation answers
until then. With no read model running, it rebuilds in this process instead, and the next
start serves the new generation."""

from __future__ import annotations

import asyncio
import time
from contextlib import closing
from typing import Any

import click
from prometheus_client import CollectorRegistry

from infra.admin import AdminClient, AdminUnreachable
from infra.processes import PROCESSES, READ_MODEL, urls
from infra.settings import ReadModelSettings
from libs.response import ServiceError
from read_model.feed import Feed
from read_model.generations import Generations
from read_model.rebuild import RebuildStatus, rebuild


@click.group("read-model")
def read_model() -> None:
    """The CQRS read model (stage 9): its views' generations, and rebuilds."""


@read_model.command()
def status() -> None:
    """The generation served, its view counts, and the last rebuild."""
    with closing(_admin()) as admin:
        described = _call(admin, "GET", "/admin/read-model")
    click.echo(f"serving {described['generation']}: " + _counts(described["views"]))
    for generation in described["generations"]:
        click.echo(f"  {generation['name']:<5} {generation['state']:<9} {generation['created_at']}")
    last = described["rebuild"]
    if last["state"] != "idle":
        click.echo(f"last rebuild: {_rebuild_line(last)}")


@read_model.command("rebuild")
@click.option("--timeout", type=float, default=600.0, show_default=True,
              help="Seconds to wait for the new generation to catch up.")  # fmt: skip
def rebuild_command(timeout: float) -> None:
    """Replay the topics into a fresh generation of views and swap it in when caught up."""
    with closing(_admin()) as admin:
        try:
            _call(admin, "POST", "/admin/read-model/rebuild")
        except AdminUnreachable:
            click.echo("the read model is not running: rebuilding here")
            done = asyncio.run(_offline(PROCESSES[READ_MODEL].load(), timeout))
            click.echo(_rebuild_line(done.to_json()))
            return
        deadline, shown = time.monotonic() + timeout, ""
        while True:
            last = _call(admin, "GET", "/admin/read-model")["rebuild"]
            line = _rebuild_line(last)
            if line != shown:
                click.echo(line)
                shown = line
            if last["state"] == "swapped":
                return
            if last["state"] == "failed":
                raise click.ClickException(f"the rebuild failed: {last['error']}")
            if time.monotonic() > deadline:
                raise click.ClickException(f"the rebuild did not swap within {timeout:g}s")
            time.sleep(0.5)


async def _offline(settings: ReadModelSettings, within: float) -> RebuildStatus:
    generations, status = Generations(settings.read_model_db), RebuildStatus()

    async def swap(feed: Feed) -> None:
        await asyncio.to_thread(generations.swap, feed.generation)

    try:
        feed = await rebuild(
            settings, generations, CollectorRegistry(), None, swap, status,
            timeout_seconds=within,
        )  # fmt: skip
        await feed.stop()
        await feed.close()
    finally:
        generations.close()
    return status


def _rebuild_line(last: dict[str, Any]) -> str:
    if last["state"] == "starting":
        return f"rebuilding {last['generation']}: reading where the log ends"
    if last["state"] == "running":
        return (
            f"rebuilding {last['generation']}: {last['events_to_replay']} events in the log, "
            f"{last['behind']} still to replay"
        )
    if last["state"] == "swapped":
        replaced = f", replacing {last['replaced']}" if last["replaced"] else ""
        return (
            f"rebuilt {last['generation']} from {last['events_to_replay']} events in "
            f"{last['seconds']:.2f}s{replaced}: {_counts(last['views'])}"
        )
    return f"{last['state']}: {last.get('error') or ''}".strip()


def _counts(counts: dict[str, int]) -> str:
    return f"{counts.get('my_page', 0)} my pages, {counts.get('order', 0)} order details"


def _admin() -> AdminClient:
    settings = PROCESSES[READ_MODEL].load()
    return AdminClient(urls(), settings.admin_token)


def _call(admin: AdminClient, method: str, path: str) -> Any:
    try:
        return admin.call(READ_MODEL, method, path)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
