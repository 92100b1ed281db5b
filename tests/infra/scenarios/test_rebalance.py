"""`shop scenario rebalance` against both brokers: the table has its four rows, the lesson shows
(static membership pauses the group less than eager rebalancing), and the dev broker, which
speaks the classic group protocol only, says so in the KIP-848 row instead of failing."""

from __future__ import annotations

from infra.scenarios import rebalance


def _rows(output: str) -> dict[str, str]:
    """Each mode's table line, found by the mode's name at the start of a line."""
    lines = output.splitlines()
    return {
        mode.name: next(line for line in lines if line.startswith(mode.name))
        for mode in rebalance.MODES
    }


async def test_the_rebalance_lesson_shows_on_either_broker(kafka_broker, capsys) -> None:
    code = await rebalance.run(kafka_broker.bootstrap)
    output = capsys.readouterr().out

    rows = _rows(output)
    assert code == 0, output
    assert len(rows) == 4
    eager, static, _cooperative, kip848 = (rows[mode.name] for mode in rebalance.MODES)
    assert _pause_ms(static) < _pause_ms(eager), output
    if kafka_broker.kind == "devbroker":
        assert "not supported" in kip848, output
    assert "reading:" in output


def _pause_ms(line: str) -> float:
    """The first figure after the mode's name: the longest pause in milliseconds."""
    for mode in rebalance.MODES:
        if line.startswith(mode.name):
            return float(line[len(mode.name) :].split()[0])
    raise AssertionError(f"not a table row: {line!r}")
