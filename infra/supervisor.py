"""A small local process supervisor: starts processes as `shop run NAME` children, waits for
their readiness, and stops them with SIGTERM so each one drains and exits 0 by itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Child:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Supervisor:
    env: dict[str, str]
    log_dir: Path
    children: dict[str, Child] = field(default_factory=dict)

    def start(self, name: str, port: int) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "infra", "run", name, "--port", str(port)],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches the supervisor only
            )
        child = Child(name, port, process, log_path)
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
            while not _is_ready(child):
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited during start-up:\n{child.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{child.name} was not ready in {timeout:g}s:\n{child.log_tail()}"
                    )
                time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> dict[str, int | None]:
        """SIGTERM to all, then wait; returns each exit code (None if it had to be killed)."""
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, child in self.children.items():
            try:
                codes[name] = child.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
                codes[name] = None
        return codes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _is_ready(child: Child) -> bool:
    try:
        return httpx.get(f"{child.url}/health/ready", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
