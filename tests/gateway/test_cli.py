"""`shop routes`, `shop ramp` and `shop shadow` drive the admin API of a running gateway."""

from __future__ import annotations

from click.testing import CliRunner

from infra.cli import main
from tests.gateway.conftest import ADMIN_TOKEN, RunningGateway


def shop(gateway: RunningGateway, *args: str):
    env = {"SHOP_GATEWAY_URL": gateway.url, "SHOP_ADMIN_TOKEN": ADMIN_TOKEN}
    return CliRunner().invoke(main, list(args), env=env)


def test_routes_set_changes_weights_and_routes_show_prints_them(gateway: RunningGateway):
    changed = shop(gateway, "routes", "set", "members", "monolith=9", "member-service=1")
    assert changed.exit_code == 0, changed.output
    shown = shop(gateway, "routes", "show")
    assert "monolith=9 (90.0%)  member-service=1 (10.0%)" in shown.output


def test_a_refused_change_prints_the_envelope_error_and_fails(gateway: RunningGateway):
    refused = shop(gateway, "routes", "set", "members", "ghost=1")
    assert refused.exit_code == 1
    assert "INVALID_ROUTE_TABLE" in refused.output and "unknown backend" in refused.output


def test_ramp_starts_in_the_gateway_and_can_be_aborted(gateway: RunningGateway):
    started = shop(
        gateway,
        "ramp",
        "members",
        "--to",
        "member-service",
        "--steps",
        "10,100",
        "--interval",
        "30",
        "--no-follow",
    )
    assert started.exit_code == 0, started.output
    assert "monolith -> member-service" in started.output
    assert "running at 10%" in shop(gateway, "ramp", "members", "--status").output
    aborted = shop(gateway, "ramp", "members", "--abort")
    assert "aborted at 0%" in aborted.output


def test_shadow_can_be_switched_on_and_off(gateway: RunningGateway):
    on = shop(gateway, "shadow", "members", "--to", "member-service", "--percent", "5")
    assert on.exit_code == 0, on.output
    assert "shadow->member-service" in shop(gateway, "routes", "show").output
    assert shop(gateway, "shadow", "members", "--off").exit_code == 0
    assert "shadow->" not in shop(gateway, "routes", "show").output
