"""The model against timeloop-model v3.0.3 on every public reference case.

Reads, updates and fills must be identical per level and tensor; energy and cycles within 0.5%.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from formulation.model.encoding import encode
from formulation.specs.loading import case_from_dict
from formulation.model.exact import evaluate, evaluate_batch
from formulation.model.report import compare_with_reference, evaluation_record
from tests.conftest import CASES_FILE

CASE_LINES = [line for line in CASES_FILE.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("line", CASE_LINES, ids=[json.loads(line)["id"] for line in CASE_LINES])
def test_case_agrees_with_timeloop(line):
    case = case_from_dict(json.loads(line))
    record = evaluation_record(evaluate(case.layer, case.arch, case.mapping), case.arch)
    assert compare_with_reference(record, case.reference) == []
    assert record["cycles"] == case.reference["cycles"]
    assert record["utilization"] == pytest.approx(case.reference["utilization"], abs=0.006)


def test_utilized_capacity_and_instances_match(reference_cases):
    for case in reference_cases:
        record = evaluation_record(evaluate(case.layer, case.arch, case.mapping), case.arch)
        for level, ref in case.reference["levels"].items():
            for tensor, ref_t in ref["tensors"].items():
                got = record["levels"][level]["tensors"][tensor]
                assert got["utilized_capacity"] == ref_t["utilized_capacity"], (case.id, level, tensor)
                assert got["utilized_instances"] == ref_t["utilized_instances"], (case.id, level, tensor)
                if tensor != "Inputs":
                    assert got["partition_size"] == ref_t["partition_size"], (case.id, level, tensor)


def test_batched_evaluation_equals_one_at_a_time(reference_cases):
    groups = defaultdict(list)
    for case in reference_cases:
        groups[(case.layer, case.arch)].append(case)
    checked = 0
    for (layer, arch), cases in groups.items():
        if len(cases) < 2:
            continue
        batch = evaluate_batch(layer, arch, encode([c.mapping for c in cases]))
        for i, case in enumerate(cases):
            single = evaluate(layer, arch, case.mapping)
            for field in ("reads", "fills", "updates", "cycles", "energy_pJ"):
                assert np.array_equal(getattr(batch, field)[i], getattr(single, field)[0]), (case.id, field)
            checked += 1
    assert checked > 200
