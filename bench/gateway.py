"""Gateway benchmark: the gateway vs nginx proxying the same backend, vs the backend direct,
at the same concurrency, side by side in one run.

    .venv/bin/python bench/gateway.py [--connections 32] [--duration 10] [--rounds 3]

Needs `wrk` and `nginx` (Debian packages). Starts one backend (a service built with
create_service_app, like every process here), `shop run gateway` routing /api/products to it,
and nginx (one worker, keep-alive upstream) in front of the same backend; then runs wrk
against the three in turn, `--rounds` times interleaved, and prints the median of each figure
and the ratios against the targets. It is a script, not a timed test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

TARGET_THROUGHPUT_VS_NGINX = 0.7
TARGET_P99_OVERHEAD_MS = 5.0
PATH = "/api/products/1"
ROOT = Path(__file__).resolve().parents[1]

BACKEND_APP = """
import logging
import structlog
from libs.response import ok
from libs.service import ServiceOptions, create_service_app

logging.getLogger().setLevel(logging.WARNING)
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
app = create_service_app(ServiceOptions("monolith"))

@app.get("/api/products/{product_id}")
async def product(product_id: int):
    return ok({"id": product_id, "name": "Linen shirt", "price": 59000, "stock": 12})
"""

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


@dataclass
class Figures:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("w") as out:
        child = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


@contextlib.contextmanager
def running(work: Path) -> Iterator[dict[str, str]]:
    backend, gateway, nginx = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SHOP_DATA_DIR": str(work / "data")}
    (work / "backend_app.py").write_text(BACKEND_APP)
    uvicorn_args = ["--no-access-log", "--log-level", "warning", "--app-dir", str(work)]
    gateway_env = {
        **env,
        "SHOP_LOG_LEVEL": "WARNING",
        "SHOP_GATEWAY_BACKENDS": json.dumps({"monolith": f"http://127.0.0.1:{backend}"}),
    }
    (work / "nginx").mkdir()
    conf = work / "nginx" / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=work / "nginx", backend=backend, port=nginx))
    python = sys.executable
    with (
        process(
            [python, "-m", "uvicorn", "backend_app:app", "--port", str(backend), *uvicorn_args],
            env,
            work / "backend.log",
        ),
        process(
            [python, "-m", "infra", "run", "gateway", "--port", str(gateway)],
            gateway_env,
            work / "gateway.log",
        ),
        process(["nginx", "-c", str(conf), "-p", str(work / "nginx")], env, work / "nginx.log"),
    ):
        urls = {
            "direct": f"http://127.0.0.1:{backend}{PATH}",
            "nginx": f"http://127.0.0.1:{nginx}{PATH}",
            "gateway": f"http://127.0.0.1:{gateway}{PATH}",
        }
        for url in urls.values():
            wait_until_up(url)
        yield urls


def wrk(url: str, connections: int, threads: int, seconds: int) -> Figures:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(
        int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors.*?):\s*(\d+)", out)
    )
    return Figures(rps, _percentile(out, "50%"), _percentile(out, "99%"), errors)


def _percentile(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def median(figures: list[Figures]) -> Figures:
    return Figures(
        statistics.median(f.rps for f in figures),
        statistics.median(f.p50_ms for f in figures),
        statistics.median(f.p99_ms for f in figures),
        sum(f.errors for f in figures),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--light-connections",
        type=int,
        default=2,
        help="a second, unsaturated pass: the latency one hop adds when nothing queues",
    )
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            print(f"{tool} is not installed (apt-get install {tool})", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp, running(Path(tmp)) as urls:
        for url in urls.values():  # warm up connections and caches
            wrk(url, args.connections, args.threads, 2)
        loaded = measure(urls, args.connections, args.threads, args.duration, args.rounds)
        light = measure(urls, args.light_connections, 1, args.duration, args.rounds)
    report(loaded, args.connections, args.duration, args.rounds)
    print()
    report(light, args.light_connections, args.duration, args.rounds, targets=False)
    return 0


def measure(
    urls: dict[str, str], connections: int, threads: int, seconds: int, rounds: int
) -> dict[str, Figures]:
    """Each target in turn, `rounds` times interleaved, so drift hits all three alike."""
    results: dict[str, list[Figures]] = {name: [] for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            results[name].append(wrk(url, connections, min(threads, connections), seconds))
    return {name: median(runs) for name, runs in results.items()}


def report(
    figures: dict[str, Figures], connections: int, duration: int, rounds: int, targets: bool = True
) -> None:
    print(
        f"GET {PATH}, {connections} connections, {duration}s x {rounds} rounds "
        f"(median), {os.cpu_count()} CPUs"
    )
    print(f"{'target':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, f in figures.items():
        print(f"{name:<10}{f.rps:>10.0f}{f.p50_ms:>10.2f}{f.p99_ms:>10.2f}{f.errors:>8}")
    ratio = figures["gateway"].rps / figures["nginx"].rps
    overhead = figures["gateway"].p99_ms - figures["direct"].p99_ms
    nginx_overhead = figures["nginx"].p99_ms - figures["direct"].p99_ms
    print(
        textwrap.dedent(
            f"""
            gateway / nginx throughput   {ratio:.2f}x  (target >= {TARGET_THROUGHPUT_VS_NGINX}x)
            gateway / direct throughput  {figures["gateway"].rps / figures["direct"].rps:.2f}x
            gateway p99 - direct p99     {overhead:+.2f} ms  (target <= {TARGET_P99_OVERHEAD_MS} ms)
            nginx p99 - direct p99       {nginx_overhead:+.2f} ms"""
        ).strip()
    )
    if targets:
        met = ratio >= TARGET_THROUGHPUT_VS_NGINX and overhead <= TARGET_P99_OVERHEAD_MS
        print("targets met" if met else "targets NOT met")


if __name__ == "__main__":
    raise SystemExit(main())
