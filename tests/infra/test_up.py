"""`shop up --stage N`: the whole system started and moved to stage N on a fresh data dir, so a
trainee can open any stage directly (here the last, every extraction done); Ctrl-C still stops
every process gracefully."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from infra.demo.run import isolated_env
from infra.settings import SharedSettings, load_settings
from infra.stages import STAGES, Endpoints, StageEngine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


class Up:
    """`shop up` in a child process, its output collected line by line."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.env, ports = isolated_env(data_dir)
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra", "up", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {text!r} in the output of shop up:\n{self.output[-5000:]}")
            time.sleep(0.2)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def test_up_at_stage_9_starts_the_system_with_every_extraction_done(tmp_path):
    up = Up(tmp_path, "--stage", "9")
    try:
        up.wait_for("at stage 9:", timeout=240)
        # Every stage before it in turn, the ramp of stage 2 in one jump.
        for number in range(1, 10):
            assert f"stage {number - 1} -> {number}: {STAGES[number].name}" in up.output
        # No metric-gated ramp step ("ramp  50%  promoted") without traffic to judge.
        assert not [line for line in up.lines if line.strip().startswith("ramp ")]

        token = load_settings(SharedSettings).admin_token
        engine = StageEngine(Endpoints(up.urls, token), say=lambda _: None)
        try:
            assert engine.current() == 9
        finally:
            engine.close()
        # The member service answers the whole members route: a signup through the gateway
        # is served by it ...
        signup = httpx.post(
            f"{up.urls['gateway']}/api/members",
            json={"email": "trainee@example.com", "password": "password-123", "name": "Trainee"},
            timeout=10,
        )
        assert signup.status_code == 201, signup.text
        assert signup.headers["X-Served-By"] == "member-service"
        login = httpx.post(
            f"{up.urls['gateway']}/api/members/login",
            json={"email": "trainee@example.com", "password": "password-123"},
            timeout=10,
        )
        me = {"Authorization": f"Bearer {login.json()['data']['token']}"}
        # ... and the my page is the read model's (CQRS, stage 9), not the monolith's fan-out.
        page = httpx.get(f"{up.urls['gateway']}/api/views/my-page", headers=me, timeout=10)
        assert page.headers["X-Served-By"] == "read-model", page.text
        assert "migration console: " in up.output
    finally:
        code = up.stop()
    assert code == 0, up.output[-3000:]
    assert "stopped: " in up.output


def test_up_refuses_a_stage_that_does_not_exist(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "infra", "up", "--stage", str(len(STAGES))],
        cwd=ROOT,
        env={**os.environ, "SHOP_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Invalid value for '--stage'" in result.stderr
    assert not (tmp_path / "logs").exists()  # refused before anything started
