"""`shop routes`, `shop ramp`, `shop shadow`: clients of the gateway's admin API. The ramp runs
inside the gateway; `shop ramp` starts it and follows it, and may exit without stopping it."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from infra.admin import AdminClient, AdminUnreachable
from infra.settings import GatewaySettings, load_settings
from libs.response import ServiceError

FINAL_STATES = {"completed", "rolled_back", "aborted", "stalled", "interrupted"}


class Admin:
    """The gateway's admin API for these commands: infra.admin's client, its errors as the
    one-line messages a command exits with."""

    def __init__(self, url: str | None, token: str | None) -> None:
        settings = load_settings(GatewaySettings)
        self.url = url or settings.url(settings.gateway_port)
        self.client = AdminClient({"gateway": self.url}, token or settings.admin_token)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        with _as_click_error(self.url):
            return self.client.call("gateway", method, path, body)

    def table(self) -> dict[str, Any]:
        with _as_click_error(self.url):
            return self.client.route_table()

    def put_routes(self, data: dict[str, Any], reason: str) -> Any:
        with _as_click_error(self.url):
            return self.client.put_route_table(data, reason)


@contextmanager
def _as_click_error(url: str) -> Iterator[None]:
    try:
        yield
    except ServiceError as exc:
        details = "".join(f"\n  {json.dumps(d)}" for d in exc.details)
        raise click.ClickException(f"{exc.status} {exc.code}: {exc.message}{details}") from exc
    except AdminUnreachable as exc:
        raise click.ClickException(f"gateway at {url}: {exc.__cause__!r}") from exc


def admin_options(command):
    command = click.option("--token", envvar="SHOP_ADMIN_TOKEN", help="Admin token.")(command)
    return click.option("--url", envvar="SHOP_GATEWAY_URL", help="Gateway base URL.")(command)


@click.group()
def routes() -> None:
    """Read and change the gateway's route table."""


@routes.command("show")
@admin_options
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def routes_show(url: str | None, token: str | None, as_json: bool) -> None:
    """Print every route with its weights and shares."""
    data = Admin(url, token).call("GET", "/admin/routes")
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"route table version {data['version']}")
    for r in data["routes"]:
        split = "  ".join(f"{b}={w} ({r['share_percent'][b]}%)" for b, w in r["weights"].items())
        methods = ",".join(r["methods"]) if r["methods"] else "*"
        shadow = f"  shadow->{r['shadow']['backend']}" if r["shadow"] else ""
        click.echo(f"  {r['name']:<10} {r['prefix']:<16} {methods:<5} {split}{shadow}")


@routes.command("set")
@admin_options
@click.argument("route")
@click.argument("weights", nargs=-1, required=True)
@click.option("--reason", default="", help="Why, for the change log.")
def routes_set(
    url: str | None, token: str | None, route: str, weights: tuple[str, ...], reason: str
):
    """Set ROUTE's weights, e.g. `shop routes set members monolith=9 member-service=1`."""
    admin = Admin(url, token)
    data = admin.table()
    target = _route(data, route)
    target["weights"] = dict(_weight(w) for w in weights)
    admin.put_routes(data, reason)
    click.echo(f"{route}: " + " ".join(weights))


@routes.command("apply")
@admin_options
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", default="", help="Why, for the change log.")
def routes_apply(url: str | None, token: str | None, path: Path, reason: str) -> None:
    """Replace the whole table with the one in PATH (JSON: {"routes": [...]})."""
    body = json.loads(path.read_text())
    body["reason"] = reason or body.get("reason", "")
    data = Admin(url, token).call("PUT", "/admin/routes", body)
    click.echo(f"route table version {data['version']} applied")


@click.command()
@admin_options
@click.argument("route")
@click.option("--to", "candidate", help="The backend to move traffic to.")
@click.option("--from", "baseline", help="The backend it comes from (default: the heaviest).")
@click.option("--steps", help="Percentages, e.g. 10,30,50,100.")
@click.option("--interval", type=float, help="Seconds to watch each step.")
@click.option("--min-requests", type=int, help="Requests each side needs before a step counts.")
@click.option("--max-error-delta", type=float, help="Allowed extra error rate, e.g. 0.01.")
@click.option("--p99-ratio", type=float, help="Allowed p99 as a multiple of the baseline's.")
@click.option("--status", "status_only", is_flag=True, help="Show the latest ramp and exit.")
@click.option("--abort", is_flag=True, help="Abort the running ramp (back to 0%).")
@click.option("--no-follow", is_flag=True, help="Start it and return at once.")
def ramp(
    url: str | None,
    token: str | None,
    route: str,
    candidate: str | None,
    baseline: str | None,
    steps: str | None,
    interval: float | None,
    min_requests: int | None,
    max_error_delta: float | None,
    p99_ratio: float | None,
    status_only: bool,
    abort: bool,
    no_follow: bool,
) -> None:
    """Raise ROUTE's share on a new backend step by step, gated on its error rate and p99.

    Exits 0 when the ramp completes, 1 when it rolls back, stalls or is aborted."""
    admin = Admin(url, token)
    if abort:
        _print_ramp(admin.call("POST", f"/admin/ramps/{route}/abort"))
        return
    if status_only:
        _print_ramp(admin.call("GET", f"/admin/ramps/{route}"))
        return
    if not candidate:
        raise click.UsageError("--to BACKEND is needed to start a ramp")
    plan = {
        "route": route,
        "candidate": candidate,
        "baseline": baseline,
        "steps": [int(s) for s in steps.split(",")] if steps else None,
        "interval_seconds": interval,
        "min_requests": min_requests,
        "max_error_delta": max_error_delta,
        "p99_ratio": p99_ratio,
    }
    started = admin.call("POST", "/admin/ramps", {k: v for k, v in plan.items() if v is not None})
    p = started["plan"]
    click.echo(
        f"ramp {started['id']} on {route}: {p['baseline']} -> {p['candidate']}, steps "
        f"{p['steps']}, every {p['interval_seconds']:g}s, min {p['min_requests']} requests"
    )
    if no_follow:
        return
    final = _follow(admin, route)
    sys.exit(0 if final["state"] == "completed" else 1)


def _follow(admin: Admin, route: str) -> dict[str, Any]:
    shown = 0
    try:
        while True:
            current = admin.call("GET", f"/admin/ramps/{route}")
            for entry in current["history"][shown:]:
                click.echo(_history_line(entry))
            shown = len(current["history"])
            if current["state"] in FINAL_STATES:
                click.echo(f"{current['state']}: {current['reason']}")
                return current
            time.sleep(1.0)
    except KeyboardInterrupt:
        click.echo("\nstopped following; the ramp keeps running in the gateway")
        sys.exit(130)


def _history_line(entry: dict[str, Any]) -> str:
    at = time.strftime("%H:%M:%S", time.localtime(entry["at"]))
    percent = f"{entry['percent']:>3}%" if "percent" in entry else "    "
    return f"  {at} {percent} {entry['outcome']:<12} {entry['reason']}"


def _print_ramp(data: dict[str, Any]) -> None:
    p = data["plan"]
    click.echo(
        f"{p['route']}: {p['baseline']} -> {p['candidate']} {data['state']} at {data['percent']}%"
    )
    for entry in data["history"]:
        click.echo(_history_line(entry))
    if data["reason"]:
        click.echo(f"reason: {data['reason']}")


@click.command()
@admin_options
@click.argument("route")
@click.option("--to", "backend", help="The candidate to mirror GET requests to.")
@click.option("--percent", type=float, default=None, help="Share of GETs mirrored (0-100).")
@click.option("--ignore", multiple=True, help="Field pattern to skip, e.g. 'data.*.updated_at'.")
@click.option("--off", is_flag=True, help="Stop mirroring this route.")
@click.option("--show", is_flag=True, help="Show counts and the latest mismatches.")
def shadow(
    url: str | None,
    token: str | None,
    route: str,
    backend: str | None,
    percent: float | None,
    ignore: tuple[str, ...],
    off: bool,
    show: bool,
) -> None:
    """Mirror a share of ROUTE's GET requests to a candidate and compare the answers."""
    admin = Admin(url, token)
    if show:
        data = admin.call("GET", "/admin/shadow")
        click.echo(json.dumps(data["counts"].get(route, {})))
        for m in [m for m in data["latest_mismatches"] if m["route"] == route][:10]:
            click.echo(f"  {m['path']}: {json.dumps(m['differences'])}")
        return
    data = admin.table()
    target = _route(data, route)
    if off:
        target["shadow"] = None
    elif backend:
        target["shadow"] = {"backend": backend, "ignore": list(ignore)}
        if percent is not None:
            target["shadow"]["percent"] = percent
    else:
        raise click.UsageError("give --to BACKEND, --off or --show")
    admin.put_routes(data, f"shadow {'off' if off else 'to ' + str(backend)}")
    click.echo(f"{route}: shadow {'off' if off else 'on -> ' + str(backend)}")


def _route(data: dict[str, Any], name: str) -> dict[str, Any]:
    for route in data["routes"]:
        if route["name"] == name:
            return route
    raise click.ClickException(f"no route '{name}'; routes: {[r['name'] for r in data['routes']]}")


def _weight(text: str) -> tuple[str, int]:
    backend, _, weight = text.partition("=")
    if not weight.isdigit():
        raise click.BadParameter(f"{text!r}: expected BACKEND=WEIGHT, e.g. member-service=1")
    return backend, int(weight)


def register(main: click.Group) -> None:
    for command in (routes, ramp, shadow):
        main.add_command(command)
