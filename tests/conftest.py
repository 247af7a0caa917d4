"""Shared fixtures: the Timeloop reference cases copied into tests/data (see tests/data/PROVENANCE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from formulation.specs.loading import read_cases

DATA = Path(__file__).parent / "data"
CASES_FILE = DATA / "timeloop_cases.jsonl"


@pytest.fixture(scope="session")
def reference_cases():
    return read_cases(CASES_FILE)
