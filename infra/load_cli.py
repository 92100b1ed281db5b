"""`shop load`: the demo's mixed customer load (signups, logins, profile changes, orders,
card and points payments, retries, cancels, refunds) against a running system, until Ctrl-C
or `--seconds`. A metric-gated ramp judges live traffic: run this in one terminal and
`shop stage apply 2` in another, and watch the split move in the console."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter

import click

from infra.demo.client import ShopClient, Tally
from infra.demo.mixed import MixedLoad
from infra.settings import GatewaySettings, load_settings


@click.command()
@click.option("--url", envvar="SHOP_GATEWAY_URL", help="Gateway base URL (default: the local one).")
@click.option("--workers", default=6, show_default=True, help="Concurrent customers.")
@click.option("--seconds", default=0.0, help="Stop after this long (default: until Ctrl-C).")
@click.option("--every", default=5.0, show_default=True, help="Seconds between report lines.")
def load(url: str | None, workers: int, seconds: float, every: float) -> None:
    """Drive mixed customer traffic through the gateway and report it as it goes."""
    if url is None:
        settings = load_settings(GatewaySettings)
        url = settings.url(settings.gateway_port)
    code = asyncio.run(_run(url, workers, seconds, every))
    raise SystemExit(code)


async def _run(url: str, workers: int, seconds: float, every: float) -> int:
    tally = Tally()
    client = ShopClient(url, tally)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        listing = await client.call("GET", "/api/products", params={"limit": 100})
    except Exception as exc:
        await client.aclose()
        raise click.ClickException(
            f"no shop answers at {url} ({exc!r}): start it with `shop up`"
        ) from exc
    traffic = MixedLoad(client, listing.data["items"], workers)
    click.echo(f"driving {workers} customers against {url}; Ctrl-C stops")
    started = time.monotonic()
    traffic.start()
    shown: Counter = Counter()  # who served each route, up to the last line
    try:
        while not stop.is_set():
            left = seconds - (time.monotonic() - started) if seconds else every
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(every, left))
            click.echo(line(tally, time.monotonic() - started, shown))
            shown = Counter(tally.by_route)
    finally:
        await traffic.stop()
        await client.aclose()
    click.echo("whole run: " + line(tally, time.monotonic() - started, Counter()))
    for problem in (tally.violations + traffic.violations)[:10]:
        click.echo(f"  problem: {problem}")
    return 1 if tally.violations or traffic.violations else 0


def line(tally: Tally, elapsed: float, before: Counter) -> str:
    """One report line: totals so far, status classes, and who served each route since the
    line `before` was counted at (the split a ramp is moving)."""
    classes = {c: sum(n for s, n in tally.by_status.items() if s // 100 == c) for c in (2, 4, 5)}
    routes: dict[str, dict[str, int]] = {}
    for (route, backend), n in (Counter(tally.by_route) - before).items():
        routes.setdefault(route, {})[backend] = n
    split = "  ".join(
        f"{route} "
        + " : ".join(f"{b} {100 * n // sum(by.values())}%" for b, n in sorted(by.items()))
        for route, by in sorted(routes.items())
    )
    return (
        f"{elapsed:6.1f}s  requests {tally.requests}  2xx {classes[2]}  4xx {classes[4]}  "
        f"5xx {classes[5]}  {split}"
    )
