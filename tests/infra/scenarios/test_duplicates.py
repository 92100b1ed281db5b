"""`shop scenario duplicates` against both brokers: the batch a killed relay resends is
applied twice without an inbox, and once with it."""

from __future__ import annotations

import re

from infra.scenarios import duplicates


def figures(output: str, row: str) -> tuple[int, int]:
    """The two columns (no inbox, inbox) of one table row."""
    match = re.search(rf"^{re.escape(row)}\s+(\d+)\s+(\d+)\s*$", output, re.MULTILINE)
    assert match, f"no row {row!r} in:\n{output}"
    return int(match[1]), int(match[2])


async def test_a_resent_batch_is_applied_twice_without_an_inbox_and_once_with_it(bootstrap, capsys):
    assert await duplicates.run(bootstrap) == 0
    output = capsys.readouterr().out
    committed = duplicates.ORDERS * len(duplicates.STATUSES)
    resent = duplicates.BATCH
    assert figures(output, "events committed") == (committed, committed)
    assert figures(output, "messages on the topic") == (committed + resent,) * 2
    plain_duplicates, inbox_duplicates = figures(output, "duplicates delivered")
    assert plain_duplicates == resent and inbox_duplicates >= resent
    assert figures(output, "events applied (effect rows)") == (committed + resent, committed)
    assert figures(output, "distinct events applied") == (committed, committed)
    assert figures(output, "double applications") == (resent, 0)
    assert "verdict: PASS" in output
