from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.processes import PROCESSES
from infra.settings import DEV_JWT_SECRET, Settings
from infra.supervisor import free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented_in_one_place():
    documented = DOC.read_text()
    variables = {
        str(info.validation_alias)
        for spec in PROCESSES.values()
        for info in spec.settings.model_fields.values()
    }
    assert "SHOP_MEMBER_DATA_MODE" in variables  # a declared extraction's own, with its prefix
    assert sorted(v for v in variables if f"`{v}`" not in documented) == []


def test_production_refuses_the_development_secret():
    with pytest.raises(ValidationError, match="SHOP_JWT_SECRET"):
        Settings(env="production", jwt_secret=DEV_JWT_SECRET)
    Settings(
        env="production",
        jwt_secret="a-real-secret-of-at-least-32-characters!",
        admin_token="a-real-admin-token",
    )


def test_production_refuses_the_development_admin_token():
    with pytest.raises(ValidationError, match="SHOP_ADMIN_TOKEN"):
        Settings(env="production", jwt_secret="a-real-secret-of-at-least-32-characters!")


@pytest.mark.parametrize("token", ["", "x", "fifteen-chars!!"])
def test_production_refuses_an_admin_token_shorter_than_16_characters(token: str):
    with pytest.raises(ValidationError, match="SHOP_ADMIN_TOKEN must be at least 16"):
        Settings(
            env="production",
            jwt_secret="a-real-secret-of-at-least-32-characters!",
            admin_token=token,
        )
    Settings(admin_token=token)  # development: any token, the default one included


def test_a_production_process_with_a_short_admin_token_does_not_start(tmp_path):
    env = {
        **os.environ,
        "SHOP_DATA_DIR": str(tmp_path),
        "SHOP_ENV": "production",
        "SHOP_JWT_SECRET": "a-real-secret-of-at-least-32-characters!",
        "SHOP_ADMIN_TOKEN": "x",
        "SHOP_GATEWAY_PORT": str(free_port()),  # were it to start, on a port of its own
    }
    done = subprocess.run(
        [sys.executable, "-m", "infra", "run", "gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "SHOP_ADMIN_TOKEN must be at least 16 characters in production" in done.stderr


def test_a_short_secret_is_refused_everywhere():
    with pytest.raises(ValidationError):
        Settings(jwt_secret="short")


def test_the_default_legacy_db_is_a_sqlite_file_under_the_data_dir(tmp_path):
    assert Settings(data_dir=tmp_path).legacy_db_url == f"sqlite:///{tmp_path / 'legacy.db'}"


def test_shop_up_gives_the_console_address_with_the_token_only_outside_production():
    from infra.up import console_url

    dev = Settings()
    assert console_url(dev) == f"http://127.0.0.1:8000/console#token={dev.admin_token}"
    prod = Settings(
        env="production",
        jwt_secret="a-real-secret-of-at-least-32-characters!",
        admin_token="a-real-admin-token-for-production-use",
    )
    assert console_url(prod) == "http://127.0.0.1:8000/console"


@pytest.mark.parametrize(
    "command",
    [
        ["run", "monolith"],
        ["up"],
        ["routes", "show"],
        ["ramp", "members", "--to", "member-service"],
        ["stage", "apply", "1"],
        ["reconcile", "members"],
        ["scenario", "ordering"],
        ["broker"],
    ],
    ids=lambda command: " ".join(command),
)
def test_every_command_turns_a_bad_variable_into_one_line(command, tmp_path):
    """Every entry point loads settings through one loader: a bad SHOP_ variable is a
    one-line error naming it, exit 1, not a pydantic traceback."""
    env = {**os.environ, "SHOP_DATA_DIR": str(tmp_path), "SHOP_TOKEN_TTL_SECONDS": "-5"}
    done = subprocess.run(
        [sys.executable, "-m", "infra", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "Error: invalid configuration: SHOP_TOKEN_TTL_SECONDS: Input should be greater than 0"
    ]


def test_forwarding_must_answer_before_the_monoliths_own_limit():
    table = {"routes": [{"name": "m", "prefix": "/api/members", "weights": {"monolith": 1}}]}
    with pytest.raises(ValidationError, match="SHOP_MONOLITH_FORWARDING_READ_TIMEOUT"):
        Settings(monolith_forwarding=table, monolith_forwarding_read_timeout=5)
    Settings(monolith_forwarding_read_timeout=5)  # forwarding off: nothing to check
    Settings(monolith_forwarding=table, monolith_forwarding_read_timeout=4.5)
