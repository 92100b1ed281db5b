"""The declared extractions are consistent with the code they name: each spec imports and is
named like its extraction, each monolith switch it flips exists with that value, and the
process table, the stages and `shop reconcile` all carry it."""

from __future__ import annotations

import pytest

from infra.cli import MIGRATIONS
from infra.extractions import EXTRACTIONS, PHASES, waves
from infra.processes import PROCESSES
from infra.stages import STAGES
from monolith.service_layer.features import CHOICES, DEFAULTS


@pytest.mark.parametrize("extraction", EXTRACTIONS, ids=lambda e: e.name)
def test_a_declaration_names_code_that_exists(extraction):
    assert extraction.migration().name == extraction.name
    for phase, flips in extraction.features.items():
        for name, value in flips:
            assert value in CHOICES.get(name, ()), f"{phase}: monolith has no {name}={value}"
    before = dict(extraction.features.get("before", ()))
    assert before == {name: DEFAULTS[name] for name in before}  # stage 0 is the default


def test_everything_derived_carries_every_extraction():
    assert len(STAGES) == 1 + len(PHASES) * len(waves(EXTRACTIONS)) + 1  # + the read model
    for extraction in EXTRACTIONS:
        assert extraction.service.name in PROCESSES
        assert MIGRATIONS[extraction.name] is extraction
        assert [s.phase for s in STAGES if extraction.name in s.extractions] == list(PHASES)
