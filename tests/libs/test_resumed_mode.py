"""An extracted service restarted after a live data-mode switch resumes that mode, not the one
it is configured to start in (which at single write the frozen legacy tables would refuse)."""

from __future__ import annotations

import logging

from libs.extraction.runtime import resumed_mode
from libs.state_file import StateFile


def test_the_mode_last_switched_to_wins_over_the_configured_one(tmp_path, caplog):
    state = StateFile(tmp_path / "member-service.data-mode.json")
    assert resumed_mode(state, "shared") == "shared"  # no history: where it is configured
    state.save({"mode": "single", "changed_at": 1.0})
    with caplog.at_level(logging.WARNING):
        assert resumed_mode(state, "shared") == "single"
    assert "resuming data mode single" in caplog.text
    assert resumed_mode(None, "dual") == "dual"  # not kept at all


def test_an_unreadable_or_unknown_mode_falls_back_to_the_configured_one(tmp_path):
    path = tmp_path / "order-service.data-mode.json"
    path.write_text("{not json")
    assert resumed_mode(StateFile(path), "shared") == "shared"
    assert path.with_suffix(".unreadable").exists()  # kept for the operator
    StateFile(path).save({"mode": "triple"})
    assert resumed_mode(StateFile(path), "dual") == "dual"
