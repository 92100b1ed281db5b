"""`shop load` drives the demo's mixed customer traffic through a real gateway in front of the
real monolith, reports it line by line, and exits 0 only when every answer was an envelope
and nothing failed on the server."""

from __future__ import annotations

import re

from click.testing import CliRunner

from gateway.app import create_app as create_gateway
from infra.cli import main
from infra.settings import Settings
from infra.supervisor import free_port
from monolith.entrypoints.app import create_app as create_monolith
from tests.support.brokers import NO_BROKER
from tests.support.servers import serving


def test_shop_load_drives_customers_through_the_gateway_and_reports_the_split(tmp_path):
    # The monolith composes /api/views through the gateway: it must know where that is.
    port = free_port()
    monolith_settings = Settings(
        data_dir=tmp_path / "monolith",
        kafka_bootstrap=NO_BROKER,
        monolith_views_compose_url=f"http://127.0.0.1:{port}",
    )
    with serving(create_monolith(monolith_settings)) as monolith:
        gateway_settings = Settings(
            data_dir=tmp_path / "gateway", gateway_backends={"monolith": monolith}
        )
        with serving(create_gateway(gateway_settings), port) as gateway:
            args = ["load", "--url", gateway, "--seconds", "3", "--every", "1", "--workers", "3"]
            result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    # The servers run in this process: their access log lines are in the output too.
    lines = [line for line in result.output.splitlines() if "[info" not in line]
    assert lines[0] == f"driving 3 customers against {gateway}; Ctrl-C stops"
    assert len([line for line in lines if re.match(r"\s+\d+\.\ds  requests", line)]) >= 2
    total = re.search(r"whole run: .* requests (\d+) .* 5xx 0 ", lines[-1])
    assert total and int(total.group(1)) > 20, lines[-1]
    assert "members monolith 100%" in lines[-1] and "orders monolith 100%" in lines[-1]
    assert "views monolith 100%" in lines[-1]


def test_shop_load_says_so_when_nothing_answers():
    result = CliRunner().invoke(main, ["load", "--url", "http://127.0.0.1:9", "--seconds", "1"])
    assert result.exit_code == 1
    assert "no shop answers at http://127.0.0.1:9" in result.output
