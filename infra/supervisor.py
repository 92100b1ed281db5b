"""A small local process supervisor: starts processes as `shop run NAME` children (and the dev
broker as `shop broker`), waits for their readiness, and stops them with SIGTERM so each one
drains and exits 0 by itself: the applications first, then the broker they flush to."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from infra.kafka.probe import kafka_answers

BROKER = "dev-broker"


@dataclass
class Child:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path
    url: str  # http://... for an app; host:port, a Kafka bootstrap address, for the broker
    is_ready: Callable[[Child], bool]

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Supervisor:
    env: dict[str, str]
    log_dir: Path
    children: dict[str, Child] = field(default_factory=dict)

    def start(self, name: str, port: int, *options: str) -> Child:
        url = f"http://127.0.0.1:{port}"
        arguments = ["run", name, "--port", str(port), *options]
        return self._spawn(name, port, url, _answers_http, arguments)

    def start_broker(self, port: int, data_dir: Path, *options: str) -> Child:
        """The embedded dev broker (`shop broker` and its `options`), ready once it answers a
        Kafka ApiVersions request."""
        arguments = ["broker", "--port", str(port), "--data-dir", str(data_dir), *options]
        return self._spawn(BROKER, port, f"127.0.0.1:{port}", _answers_kafka, arguments)

    def _spawn(
        self, name: str, port: int, url: str, is_ready: Callable[[Child], bool], arguments: list
    ) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "infra", *arguments],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches the supervisor only
            )
        child = Child(name, port, process, log_path, url, is_ready)
        self.children[name] = child
        return child

    def start_in_order(self, ports: dict[str, int]) -> None:
        """Start each process once the one before it is ready: the member service reads the
        change capture and decision log that the monolith's migrations install."""
        for name, port in ports.items():
            self.start(name, port)
            self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            while not child.is_ready(child):
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited during start-up:\n{child.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{child.name} was not ready in {timeout:g}s:\n{child.log_tail()}"
                    )
                time.sleep(0.1)

    def restart(self, name: str, timeout: float = 30.0) -> int | None:
        """One process stopped gracefully (SIGTERM: not ready for its drain delay, in-flight
        requests finished, exit) and started again on its port, returned once it is ready:
        one step of a rolling restart. Returns the old process's exit code (None if killed).

        The new process is started first and built (imports, settings, app) while the old one
        still serves; then the old one gets SIGTERM, and the new one takes the port the moment
        it is let go (`shop run --wait-for-port`) and listens at once, so a connection waits a
        moment in its backlog instead of being refused for a whole start-up."""
        old = self.children[name]
        new = self.start(name, old.port, "--wait-for-port", str(timeout))
        deadline = time.monotonic() + timeout
        loaded = f"loaded (pid {new.process.pid})"
        while loaded not in new.log_tail(200):
            if new.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not load:\n{new.log_tail()}")
            time.sleep(0.05)
        code = _terminate({name: old}, timeout)[name]
        while not new.is_ready(new):
            if new.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not come back:\n{new.log_tail()}")
            time.sleep(0.05)
        return code

    def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        """SIGTERM to all, then wait; returns each exit code (None if it had to be killed).
        The broker stops last, so the processes can still flush their events while draining."""
        apps = {n: c for n, c in self.children.items() if n != BROKER}
        broker = {n: c for n, c in self.children.items() if n == BROKER}
        codes = _terminate(apps, timeout)
        codes.update(_terminate(broker, timeout))
        return {name: codes[name] for name in self.children}


def _terminate(children: dict[str, Child], timeout: float) -> dict[str, int | None]:
    for child in children.values():
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    codes: dict[str, int | None] = {}
    for name, child in children.items():
        try:
            codes[name] = child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
            codes[name] = None
    return codes


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: all held open at once while chosen, so two calls in a row
    cannot hand out the same one (a broker's port and its controller's, say)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _answers_kafka(child: Child) -> bool:
    return kafka_answers("127.0.0.1", child.port)


def _answers_http(child: Child) -> bool:
    try:
        return httpx.get(f"{child.url}/health/ready", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
