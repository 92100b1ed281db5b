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
    # The others saw no rebalance round for a static member's restart, and some for an eager
    # group's (the pauses are printed; a busy machine's scheduling makes them noisy).
    assert _rounds(static) == 0 < _rounds(eager), output
    if kafka_broker.kind == "devbroker":
        assert "not supported" in kip848, output
    assert "reading:" in output


def _rounds(line: str) -> int:
    """The rebalance rounds the other members saw, from "N rounds, M partitions revoked"."""
    words = line.split()
    return int(words[words.index("rounds,") - 1])
