"""The compiled kernel (:mod:`formulation.model.kernel`) against the NumPy reference and Timeloop.

* Every field of :class:`~formulation.model.evaluation.BatchEvaluation` is identical (bit for
  bit, energies included) to :func:`formulation.model.exact.reference_batch` on all 252 reference
  cases, on the fanout-into-MACs cases, on sampled batches and on random tiny layers, architectures
  and mappings (the hypothesis strategies of ``tests/test_simulate.py``, which also compare the
  kernel, through ``evaluate``, with the set-based simulator).
* The fanout-into-MACs cases (``tests/data/fanout_into_macs.jsonl``, computed by timeloop-model
  v3.0.3) agree exactly with both.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from formulation.axes import TENSOR_NAMES, TENSORS, Tensor
from formulation.model import reference
from formulation.model.links import link_transfers
from formulation.model.nest import build_nest
from formulation.model.compiled import CountOverflow, evaluate_batch
from formulation.model.encoding import encode
from formulation.model.exact import evaluate
from formulation.model.simulate import simulate
from formulation.model.report import compare_with_reference, evaluation_record
from formulation.specs.loading import case_from_dict
from formulation.specs.types import SpecError
from search.sampling import sample_mappings
from tests.conftest import DATA
from tests.test_simulate import problems, sliding_window_problems

FANOUT_FILE = DATA / "fanout_into_macs.jsonl"
FANOUT_LINES = FANOUT_FILE.read_text().splitlines()


def assert_same(got, want) -> None:
    for f in fields(want):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype, f.name
        np.testing.assert_array_equal(a, b, err_msg=f.name)


def test_kernel_equals_reference_on_every_reference_case(reference_cases):
    for case in reference_cases:
        arrays = encode(case.mapping)
        assert_same(evaluate_batch(case.layer, case.arch, arrays), reference.evaluate_batch(case.layer, case.arch, arrays))


@pytest.mark.parametrize("line", FANOUT_LINES, ids=[json.loads(line)["id"] for line in FANOUT_LINES])
def test_fanout_into_macs_agrees_with_timeloop(line):
    doc = json.loads(line)
    case = case_from_dict(doc)
    got = evaluate(case.layer, case.arch, case.mapping)
    assert_same(got, reference.evaluate(case.layer, case.arch, case.mapping))
    assert compare_with_reference(evaluation_record(got, case.arch), doc["timeloop"], energy_rtol=1e-9,
                                  cycles_rtol=0) == []


def test_simulator_applies_the_fanout_into_macs_rule():
    """The set-based simulator walks the nest and forwards points between neighbouring MACs
    literally; where it applies the rule (the fanout's level keeps the tensor) its counts are
    Timeloop's, including cases where links change them."""
    compared_with_links = 0
    for line in FANOUT_LINES:
        doc = json.loads(line)
        case = case_from_dict(doc)
        sim = simulate(case.layer, case.arch, case.mapping)
        arrays = encode(case.mapping)
        reads = np.zeros((1, len(case.arch.levels), 3), dtype=np.int64)
        moved = link_transfers(case.layer, case.arch, arrays, build_nest(arrays), reads).transfers[0, -1]
        for t in TENSORS:
            if sim.link_candidates[t]:
                continue
            for l, level in enumerate(case.arch.levels):
                got = doc["timeloop"]["levels"][level.name]["tensors"].get(TENSOR_NAMES[t])
                if got is None:
                    continue
                assert (int(sim.reads[l, t]), int(sim.fills[l, t]), int(sim.updates[l, t])) == \
                    (got["reads"], got["fills"], got["updates"]), (doc["id"], level.name, t)
            compared_with_links += int(moved[t] > 0)
    assert compared_with_links >= 20


def test_fanout_into_macs_cases_exercise_the_rule():
    """The rule moves words to neighbour links for each tensor in some case (so the exact agreement
    above depends on it), with one and with two buffers above the MACs and on 2D meshes."""
    linked = set()
    for line in FANOUT_LINES:
        case = case_from_dict(json.loads(line))
        arrays = encode(case.mapping)
        reads = np.zeros((1, len(case.arch.levels), 3), dtype=np.int64)
        moved = link_transfers(case.layer, case.arch, arrays, build_nest(arrays), reads).transfers[0, -1]
        for t in np.flatnonzero(moved):
            fan_x, fan_y = case.arch.fanout(len(case.arch.levels) - 1)
            linked.add((TENSOR_NAMES[Tensor(t)], case.arch.levels[-1].instances, fan_x > 1 and fan_y > 1))
    assert {t for t, _, _ in linked} == {"Weights", "Inputs", "Outputs"}
    assert {n for _, n, _ in linked} == {1, 2}
    assert any(two_d for _, _, two_d in linked)


@pytest.mark.parametrize("arch_source", ["simple", "fanout"])
def test_kernel_equals_reference_on_sampled_batches(reference_cases, arch_source):
    if arch_source == "simple":
        case = next(c for c in reference_cases if c.id == "public-0001")
        layer, arch = case.layer, case.arch
    else:
        case = case_from_dict(json.loads(next(l for l in FANOUT_LINES if "gen" in json.loads(l)["id"]
                                              and json.loads(l)["arch"]["mac"]["instances"] >= 6)))
        layer = replace(case.layer, N=2, C=4, K=6, P=6, Q=4, R=3, S=2)
        arch = case.arch
    arrays = sample_mappings(layer, arch, 3000, np.random.default_rng(3))
    assert_same(evaluate_batch(layer, arch, arrays), reference.evaluate_batch(layer, arch, arrays))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_kernel_equals_reference_on_random_problems(problem):
    layer, arch, mapping = problem
    assert_same(evaluate(layer, arch, mapping), reference.evaluate(layer, arch, mapping))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sliding_window_problems())
def test_kernel_equals_reference_on_sliding_windows(problem):
    layer, arch, mapping = problem
    assert_same(evaluate(layer, arch, mapping), reference.evaluate(layer, arch, mapping))


def test_counts_that_could_overflow_are_refused(reference_cases):
    case = reference_cases[0]
    huge = replace(case.layer, name="huge", N=2 ** 40)
    with pytest.raises(CountOverflow, match="huge"):
        evaluate_batch(huge, case.arch, encode(case.mapping))
    assert issubclass(CountOverflow, SpecError)


def test_a_dimension_on_both_mesh_axes_is_refused():
    doc = json.loads(FANOUT_LINES[0])
    doc["layer"]["K"] = 8
    doc["mapping"][1]["spatial"] = {"K": 4}
    doc["mapping"][1]["spatial_permutation"] = "KK"
    with pytest.raises(SpecError, match=r"spatial_permutation = 'KK': K on both mesh axes"):
        case_from_dict(doc)


def test_a_link_rescale_beyond_int64_gets_the_references_numbers():
    """VGG-16's conv2_2 on the `simple` template at 64x49 PEs (GlobalBuffer 96 Ki, RegisterFile 16):
    a window-family seed (weights and outputs straight from DRAM to the MACs, inputs in the register
    files, C x P Q on the mesh) whose link rescale multiplies two counts past int64 inside the
    kernel. The batch is evaluated (it used to raise and end a co-design run), and that mapping's
    numbers, next to an ordinary one's, are the reference's, which computes the step with Python
    integers."""
    from formulation.model.encoding import MappingArrays
    from formulation.model.exact import reference_batch
    from formulation.specs.catalog import load_network, load_template
    from formulation.specs.template import Hardware

    layer = next(e.layer for e in load_network("vgg16").layers if e.layer.name == "conv2_2")
    arch = load_template("simple").instantiate(Hardware(64, 49, (("GlobalBuffer", 98304), ("RegisterFile", 16))))
    ones = [1] * 7
    heavy = MappingArrays(
        temporal=np.array([[[1, 128, 2, 16, 16, 1, 1], [1, 1, 1, 1, 1, 3, 3], ones]]),
        spatial_x=np.array([[ones, [1, 1, 64, 1, 1, 1, 1], ones]]),
        spatial_y=np.array([[ones, [1, 1, 1, 7, 7, 1, 1], ones]]),
        order=np.array([[[1, 5, 3, 2, 4, 0, 6], [4, 0, 6, 2, 5, 1, 3], [4, 3, 1, 0, 6, 5, 2]]]),
        keep=np.array([[[True, True, True], [False, False, False], [False, True, False]]]))
    plain = replace(heavy, keep=np.array([[[True, True, True], [True, True, True], [False, True, False]]]))
    batch = MappingArrays(*(np.concatenate([getattr(heavy, f), getattr(plain, f)])
                            for f in ("temporal", "spatial_x", "spatial_y", "order", "keep")))
    got, want = evaluate_batch(layer, arch, batch), reference_batch(layer, arch, batch)
    for f in fields(got):
        if isinstance(getattr(got, f.name), np.ndarray):
            assert np.array_equal(getattr(got, f.name), getattr(want, f.name)), f.name
    assert got.reads.max() > 2 ** 30 and np.isfinite(got.energy_pJ).all()
