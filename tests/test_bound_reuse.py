"""Capacity-limited reuse and the per-layer energy-cycles fronts of the lower bound, against brute force.

The Loomis-Whitney step of :mod:`formulation.bound.reuse` is checked on random sets of MACs of
random tiny layers (hypothesis); the fronts (:func:`formulation.bound.layer_terms.layer_terms`,
item 5) and their convex cuts (:func:`formulation.bound.model.energy_cuts`) are checked against
every legal mapping of tiny layers on one-PE templates whose register file holds one to three
words, where the segment bound is active (it raises the floor above the same floor with
unlimited capacity).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from formulation.bound.layer_terms import HardwareBox, layer_terms
from formulation.bound.model import energy_cuts
from formulation.specs.template import ArchTemplate
from formulation.specs.types import Layer
from test_bound import exhaustive, hardware_points, point_box
from test_search import tiny_arch


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_a_set_of_macs_is_bounded_by_the_data_it_touches(data):
    """``|V| <= sqrt(rho w i o)`` and ``|V| <=`` every pairwise product, for any set ``V`` of MACs."""
    n, k, c, p, q, r, s, g = (data.draw(st.integers(1, 3)) for _ in range(8))
    stride, dil = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    macs = list(itertools.product(range(g), range(n), range(k), range(c), range(p), range(q), range(r), range(s)))
    chosen = data.draw(st.lists(st.sampled_from(macs), min_size=1, max_size=len(macs), unique=True))
    w = {(gg, kk, cc, rr, ss) for gg, nn, kk, cc, pp, qq, rr, ss in chosen}
    i = {(gg, nn, cc, stride * pp + dil * rr, stride * qq + dil * ss) for gg, nn, kk, cc, pp, qq, rr, ss in chosen}
    o = {(gg, nn, kk, pp, qq) for gg, nn, kk, cc, pp, qq, rr, ss in chosen}
    v = len(chosen)
    assert v * v <= min(r * s, p * q) * len(w) * len(i) * len(o)
    assert v <= len(w) * len(i) and v <= len(w) * len(o) and v <= len(i) * len(o)


REUSE_LAYERS = (
    Layer("C4K4P4", N=1, C=4, K=4, P=4, Q=1),
    Layer("C2K4P4R3", N=1, C=2, K=4, P=4, Q=1, R=3),
    Layer("C2K2P2Q2R2", N=1, C=2, K=2, P=2, Q=2, R=2),
)


def one_pe_template(rf: tuple[int, int]) -> ArchTemplate:
    return ArchTemplate("one-pe", tiny_arch(), (1, 1), (1, 1), (("GlobalBuffer", 16, 16), ("RegisterFile", *rf)))


def _step(front, cycles: float) -> float:
    """``min {E_j : C_j <= cycles}`` (inf below the front's least cycles)."""
    return min((e for c, e in front if c <= cycles * (1 + 1e-12)), default=math.inf)


@pytest.mark.parametrize("layer", REUSE_LAYERS, ids=lambda l: l.name)
def test_every_mapping_lies_above_the_front_and_its_cuts(layer):
    template = one_pe_template((1, 3))
    for box in [HardwareBox.of_template(template)] + [point_box(hw) for hw in hardware_points(template)]:
        terms = layer_terms(layer, template, box)
        cuts = energy_cuts(terms.front)
        for hw in hardware_points(template):
            if not (box.sizes[1][1] <= hw.size_of("RegisterFile") <= box.sizes[1][2]):
                continue
            energy, cycles = exhaustive(layer, template, hw)
            assert terms.cycles_floor <= cycles.min() * (1 + 1e-12)
            steps = np.array([_step(terms.front, c) for c in cycles])
            assert (energy >= steps * (1 - 1e-12)).all(), (box, hw)
            for a, b in cuts:
                assert (np.log(energy) >= a * np.log(cycles) + b - 1e-9).all(), (box, hw, a, b)


def test_the_segment_bound_is_active_on_small_register_files():
    """With one or two words per PE the floor rises above the floor with unlimited capacity, and stays valid."""
    raised = 0
    for layer in REUSE_LAYERS:
        for rf in (1, 2):
            small, huge = one_pe_template((rf, rf)), one_pe_template((rf, 10 ** 9))
            tight = layer_terms(layer, small, HardwareBox.of_template(small)).energy_pJ
            loose = layer_terms(layer, huge, HardwareBox.of_template(huge)).energy_pJ
            assert loose <= tight
            raised += tight > loose * (1 + 1e-9)
            hw = next(hardware_points(small))
            assert tight <= exhaustive(layer, small, hw)[0].min() * (1 + 1e-12)
    assert raised >= 3


def test_energy_cuts_are_below_the_step_function():
    front = [(10.0, 100.0), (20.0, 60.0), (25.0, 59.0), (40.0, 30.0), (80.0, 29.0)]
    cuts = energy_cuts(front, count=4)
    assert len(cuts) == 4
    for c in np.geomspace(10.0, 1000.0, 200):
        assert max(a * math.log(c) + b for a, b in cuts) <= math.log(_step(front, c)) + 1e-12
    assert max(a * math.log(10.0) + b for a, b in cuts) == pytest.approx(math.log(100.0))
    assert max(a * math.log(1000.0) + b for a, b in cuts) == pytest.approx(math.log(29.0))


def test_no_design_of_the_compare_benchmark_is_below_the_bound_at_its_hardware():
    """The best designs any method found in ``benchmarks/results/compare.json`` (the two best distinct hardware
    points per network) are above the node bound of their own hardware point (the tightest box that holds them)."""
    import json
    from pathlib import Path

    from formulation.bound.model import NodeModel
    from formulation.goals import Objective
    from formulation.specs.catalog import load_network, load_template

    doc = json.loads((Path(__file__).parents[1] / "benchmarks" / "results" / "compare.json").read_text())
    template = load_template(doc["config"]["arch_template"])
    budget = doc["config"]["area_budget_mm2"]
    runs = [r for r in doc["runs"] if r.get("totals") and r["totals"].get("feasible") and r.get("hardware")]
    assert len(runs) >= 30
    checked: set = set()
    for run in sorted(runs, key=lambda r: r["totals"]["edp"]):
        hw = run["hardware"]
        key = (run["network"], hw["mesh_x"], hw["mesh_y"], tuple(sorted(hw["sizes_words"].items())))
        if key in checked or sum(k[0] == run["network"] for k in checked) >= 2:
            continue
        checked.add(key)
        network = load_network(run["network"])
        box = HardwareBox((hw["mesh_x"],) * 2, (hw["mesh_y"],) * 2,
                          tuple((n, hw["sizes_words"][n], hw["sizes_words"][n]) for n, _, _ in template.size_ranges))
        bound = NodeModel(network, template, Objective.EDP, budget).solve(box)
        assert bound.value <= run["totals"]["edp"], key
    assert len(checked) == 6
