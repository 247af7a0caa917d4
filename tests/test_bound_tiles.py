"""Whole tiles, link-aware input multicast and capped segment costs in the lower bound, against brute force.

Every legal mapping of tiny layers on every hardware point of tiny templates (one PE with a
register file of one to three words, and the tiny 2x2 template with tight buffers) must lie on
or above its layer's energy-cycles front (:func:`formulation.bound.layer_terms.layer_terms`, item
5), with the whole-tile term (:mod:`formulation.bound.tiles`) on; switching it off must lower the
front somewhere (it is active). The link-aware multicast ``M_I`` is checked on a real layer,
where it binds, against the mappings the exact mapper finds (they use link transfers).
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from formulation.bound.layer_terms import layer_terms, multicast_rows
from formulation.bound.segments import segment_floor
from formulation.bound.tiles import step_floor, step_vectors
from formulation.specs.types import Layer
from test_bound import TINY_LAYERS, exhaustive, hardware_points, point_box, tiny_template
from test_bound_reuse import REUSE_LAYERS, one_pe_template

layer_terms_module = importlib.import_module("formulation.bound.layer_terms")  # the package exports a function


def _step(front, cycles: float) -> float:
    """``min {E_j : C_j <= cycles}`` (inf below the front's least cycles)."""
    return min((e for c, e in front if c <= cycles * (1 + 1e-12)), default=math.inf)


def _clear() -> None:
    layer_terms_module._table.cache_clear()
    layer_terms_module._layer_terms.cache_clear()


WHOLE = Layer("whole", N=1, C=1, K=2, P=2, Q=1, R=1)  # 2 weights, 2 inputs, 4 outputs: fits 8 words whole
CASES = [(layer, one_pe_template((1, 3))) for layer in REUSE_LAYERS] + \
    [(layer, tiny_template(tight=True)) for layer in TINY_LAYERS] + [(WHOLE, one_pe_template((7, 8)))]


def _fronts() -> dict:
    _clear()
    out = {(layer.name, template.name, hw): layer_terms(layer, template, point_box(hw)).front
           for layer, template in CASES for hw in hardware_points(template)}
    _clear()
    return out


@pytest.fixture(scope="module")
def fronts():
    return _fronts()


def test_every_mapping_lies_above_the_front(fronts):
    for layer, template in CASES:
        for hw in hardware_points(template):
            energy, cycles = exhaustive(layer, template, hw)
            front = fronts[layer.name, template.name, hw]
            steps = np.array([_step(front, c) for c in cycles])
            assert (energy >= steps * (1 - 1e-12)).all(), (layer.name, template.name, hw)


def test_the_tile_term_is_active(fronts, monkeypatch):
    monkeypatch.setattr(layer_terms_module, "step_vectors", lambda layer, kept, capacity: None)
    weaker = _fronts()
    raised = 0
    for key, full_front in fronts.items():
        for c in sorted({c for c, _ in full_front} | {c for c, _ in weaker[key]}):
            full, off = _step(full_front, c), _step(weaker[key], c)
            assert off <= full * (1 + 1e-12), (key, c)  # the term only adds
            raised += full > off * (1 + 1e-9)
    assert raised >= 3


def test_step_vectors_of_a_one_dimensional_window():
    """P 4, R 3, K 2 in two words: the only tile keeping weights and inputs holds one of each (b = 1)."""
    layer = Layer("w", N=1, C=1, K=2, P=4, Q=1, R=3)
    v = step_vectors(layer, (True, True, False), 2)
    # the only tile that fits two words with both kept: one weight and one input (all factors 1);
    # a step moves P (a new input), R (a new weight; P's window moves too but may cancel) or K (a weight)
    assert {tuple(row) for row in v} == {(0.0, 1.0, 0.0), (1.0, 0.0, 0.0)}
    assert step_floor(np.array([[2.0, 3.0, 0.0]]), v, 24.0)[0] == pytest.approx(48.0)
    assert step_vectors(layer, (True, True, True), 2).shape == (0, 3)  # nothing fits: no mapping keeps all three


def test_a_tile_holding_the_whole_layer_is_covered():
    """With every loop inside the register file there is no step at all; the whole tiles over ``b`` (or a
    vector below them) must still be among the vectors, else the minimum would skip that mapping."""
    v = step_vectors(WHOLE, (True, True, True), 8)
    whole = np.array([2.0, 2.0, 4.0]) / WHOLE.macs
    assert (v <= whole + 1e-12).all(axis=1).any()
    assert step_floor(np.array([[1.0, 1.0, 1.0]]), v, WHOLE.macs)[0] <= 2 + 2 + 4


def test_capped_costs_add_the_compulsory_remainder():
    """A costly tensor kept with a cheap one: the capped variant plus the remainder beats both old forms."""
    costs = np.array([[16.0, 1.0, 0.0]])
    kept = np.array([[True, True, False]])
    compulsory = np.array([[1000.0, 100.0, 0.0]])
    without = segment_floor(costs, kept, 16, 1e6, 4, 9)
    with_rest = segment_floor(costs, kept, 16, 1e6, 4, 9, compulsory)
    capped = segment_floor(np.array([[1.0, 1.0, 0.0]]), kept, 16, 1e6, 4, 9)
    assert with_rest[0] == pytest.approx(max(without[0], capped[0] + 15.0 * 1000.0))
    assert with_rest[0] > max(without[0], (costs * compulsory).sum())


def test_link_multicast_is_the_formula_on_an_explicit_split():
    """``M_I = max(m_I, s_K s_P s_R s_Q s_S / min(s_P + s_R - 1, s_Q + s_S - 1))``."""
    layer = Layer("m", N=1, C=2, K=2, P=4, Q=3, R=2, S=3)
    rows = multicast_rows(tuple(layer.dims), 4, 6, True)
    # K 2 and R 2 on X, P 2 and S 3 on Y: m_W = 2, m_I = 2 * min(2, 2) * min(1, 3) = 4, m_O = 6
    expected = max(4, 2 * 2 * 2 * 3 / min(2 + 2 - 1, 1 + 3 - 1))
    match = rows[(rows[:, 0] == 2) & (rows[:, 1] == 4) & (rows[:, 2] == 6)]
    assert expected in set(match[:, 3])
    assert (rows[:, 3] >= rows[:, 1]).all()
    plain = multicast_rows(tuple(layer.dims), 4, 6, False)
    assert (plain[:, 3] == plain[:, 1]).all()


def test_link_aware_inputs_bind_on_a_real_layer_and_hold_for_the_mappers_designs(monkeypatch):
    """ResNet-18's 28x28 3x3 layer on 16x16 PEs with 16-word register files: ``M_I`` raises the energy
    floor, and the best mappings the exact mapper finds (energy and latency, a few seconds each; they
    forward inputs between neighbours) lie above the front."""
    from formulation.goals import Objective
    from formulation.model.exact import evaluate
    from formulation.specs.catalog import load_network, load_template
    from formulation.specs.template import Hardware
    from search.mapper import map_layer

    template = load_template("simple")
    layer = load_network("resnet18").layers[3].layer
    hw = Hardware(16, 16, (("GlobalBuffer", 65536), ("RegisterFile", 16)))
    box = point_box(hw)
    _clear()
    full = layer_terms(layer, template, box)
    plain = multicast_rows.__wrapped__

    def without_links(dims, x, y, links):
        rows = plain(dims, x, y, links).copy()
        rows[:, 3] = np.inf
        return rows

    monkeypatch.setattr(layer_terms_module, "multicast_rows", without_links)
    _clear()
    off = layer_terms(layer, template, box)
    monkeypatch.undo()
    _clear()
    assert full.energy_pJ > off.energy_pJ * (1 + 1e-6)
    arch = template.instantiate(hw)
    for objective in (Objective.ENERGY, Objective.LATENCY):
        found = map_layer(layer, arch, objective, time_limit_s=3.0, seed_samples=200)
        ev = evaluate(layer, arch, found.mapping)
        energy, cycles = float(ev.energy_pJ[0]), float(ev.cycles[0])
        assert energy >= _step(full.front, cycles) * (1 - 1e-12), objective
