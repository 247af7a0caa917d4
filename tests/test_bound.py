"""The lower bound against brute force: it never exceeds what any legal design achieves.

Tiny layers on a tiny template (DRAM -> global buffer -> up to 2x2 PEs with register files) are
small enough to enumerate every hardware point and every legal mapping
(:func:`test_search.enumerate_mappings`: every factorization, bypass and relevant loop order);
the per-layer floors, the node relaxation at every hardware point and the branch-and-bound's
bound over the whole template must all be at or below the exact optimum. On real layers the
floors are checked against random legal mappings, and on a small network against the designs
the searches find.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from formulation.axes import Tensor
from formulation.bound.layer_terms import (HardwareBox, compulsory_words, layer_terms, multicast_triples,
                                          utilization_table)
from formulation.bound.model import NodeModel
from formulation.goals import Objective
from formulation.specs.catalog import load_network, load_template
from formulation.specs.template import ArchTemplate, Hardware
from formulation.specs.types import Layer, Network, NetworkLayer
from formulation.technology import architecture_area_mm2
from search.bnb import branch_and_bound
from search.sampling import sample_mappings
from test_search import _evaluate_all, enumerate_mappings, tiny_arch

TINY_LAYERS = (
    Layer("gemm", N=1, C=2, K=4, P=1, Q=2, R=1, S=1),
    Layer("window", N=1, C=2, K=2, P=3, Q=1, R=2, S=1),
    Layer("strided", N=1, C=2, K=2, P=2, Q=1, R=1, S=1, Wstride=2),
)


def tiny_template(tight: bool = False) -> ArchTemplate:
    """2x2 PEs at most; ``tight``: buffers smaller than the tensors, so capacity decides the mappings."""
    sizes = (("GlobalBuffer", 6, 8), ("RegisterFile", 2, 3)) if tight else (("GlobalBuffer", 30, 32),
                                                                            ("RegisterFile", 7, 8))
    return ArchTemplate("tiny-template", tiny_arch(), (1, 2), (1, 2), sizes)


def hardware_points(template: ArchTemplate):
    ranges = [range(lo, hi + 1) for _, lo, hi in template.size_ranges]
    for mx, my in itertools.product(range(template.mesh_x_range[0], template.mesh_x_range[1] + 1),
                                    range(template.mesh_y_range[0], template.mesh_y_range[1] + 1)):
        for sizes in itertools.product(*ranges):
            yield Hardware(mx, my, tuple((name, s) for (name, _, _), s in zip(template.size_ranges, sizes)))


def point_box(hw: Hardware) -> HardwareBox:
    return HardwareBox((hw.mesh_x, hw.mesh_x), (hw.mesh_y, hw.mesh_y), tuple((n, v, v) for n, v in hw.sizes_words))


_SPACES: dict = {}


def exhaustive(layer: Layer, template: ArchTemplate, hw: Hardware) -> tuple[np.ndarray, np.ndarray]:
    """Energy and cycles of every legal mapping of ``layer`` on ``hw`` (cached per point)."""
    key = (layer.name, hw)
    if key not in _SPACES:
        arch = template.instantiate(hw)
        _SPACES[key] = _evaluate_all(layer, arch, enumerate_mappings(layer, arch))
    return _SPACES[key]


def test_compulsory_words_count_only_the_inputs_some_mac_reads():
    strided = TINY_LAYERS[2]
    words = compulsory_words(strided)
    assert words[Tensor.I] == 2 * 2  # columns 0 and 2 of 3, C = 2
    assert words[Tensor.W] == 4 and words[Tensor.O] == 4
    assert compulsory_words(TINY_LAYERS[1])[Tensor.I] == 2 * 4  # P + R - 1 columns


def test_utilization_table_is_the_best_divisor_split():
    layer = Layer("u", N=1, C=3, K=4, P=5, Q=1, R=1, S=1)
    table = utilization_table(tuple(layer.dims), 6, 6)
    assert table[4, 1] == 4       # K on X
    assert table[6, 6] == 30      # C 3 and K 2 on X, P 5 on Y
    assert table[2, 2] == 2       # K 2 on one axis; no other divisor fits 2, K cannot use both axes
    assert table[3, 5] == 15      # C on X, P on Y


def test_multicast_triples_are_every_legal_split():
    """Against a plain enumeration of every (divisor, axis) choice per dimension."""
    layer = Layer("m", N=2, C=3, K=4, P=6, Q=2, R=3, S=2)
    expected = set()
    choices = [[(1, None)] + [(v, a) for v in range(2, b + 1) if b % v == 0 for a in "xy"] for b in layer.dims]
    for combo in itertools.product(*choices):
        x = math.prod(v for v, a in combo if a == "x")
        y = math.prod(v for v, a in combo if a == "y")
        if x <= 6 and y <= 4:
            s = [v for v, _ in combo]
            n, k, c, p, q, r, s_ = s
            expected.add((n * p * q, k * min(p, r) * min(q, s_), c * r * s_))
    assert {tuple(int(v) for v in row) for row in multicast_triples(tuple(layer.dims), 6, 4)} == expected


@pytest.mark.parametrize("tight", [False, True], ids=["roomy", "tight"])
@pytest.mark.parametrize("layer", TINY_LAYERS, ids=lambda l: l.name)
def test_layer_floors_never_exceed_any_mapping(layer, tight):
    template = tiny_template(tight)
    for hw in hardware_points(template):
        energy, cycles = exhaustive(layer, template, hw)
        terms = layer_terms(layer, template, point_box(hw))
        assert terms.energy_pJ <= energy.min() * (1 + 1e-12), hw
        assert terms.cycles_floor <= cycles.min() * (1 + 1e-12), hw


def brute_force_optimum(network: Network, template: ArchTemplate, objective: Objective, budget: float) -> float:
    """The exact optimum over every hardware point and every mapping of every layer."""
    best = math.inf
    clock = template.base.clock_GHz * 1e9
    for hw in hardware_points(template):
        if architecture_area_mm2(template.instantiate(hw)) > budget * (1 + 1e-9):
            continue
        pairs = [exhaustive(e.layer, template, hw) for e in network.layers]
        if objective is Objective.ENERGY:
            value = sum(e.count * p[0].min() for e, p in zip(network.layers, pairs))
        elif objective is Objective.LATENCY:
            value = sum(e.count * p[1].min() for e, p in zip(network.layers, pairs)) / clock
        else:  # EDP couples the layers: combine their (energy, cycles) Pareto fronts
            fronts = [_front(p[0], p[1]) for p in pairs]
            value = math.inf
            for combo in itertools.product(*fronts):
                e = sum(n.count * c[0] for n, c in zip(network.layers, combo))
                t = sum(n.count * c[1] for n, c in zip(network.layers, combo)) / clock
                value = min(value, e * t)
        best = min(best, value)
    return best


def _front(energy: np.ndarray, cycles: np.ndarray) -> list[tuple[float, float]]:
    order = np.lexsort((energy, cycles))
    out, lowest = [], math.inf
    for i in order:
        if energy[i] < lowest:
            out.append((float(energy[i]), float(cycles[i])))
            lowest = energy[i]
    return out


TINY_NETWORK = Network("tiny", (NetworkLayer(TINY_LAYERS[0], 2), NetworkLayer(TINY_LAYERS[1], 1)))


@pytest.mark.parametrize("tight", [False, True], ids=["roomy", "tight"])
@pytest.mark.parametrize("objective", [Objective.EDP, Objective.ENERGY, Objective.LATENCY], ids=lambda o: o.value)
def test_bound_never_exceeds_the_brute_force_optimum(objective, tight):
    """Valid everywhere, and within 5% of the exact optimum on these small layers (tight second)."""
    template = tiny_template(tight)
    areas = sorted(architecture_area_mm2(template.instantiate(hw)) for hw in hardware_points(template))
    budget = areas[len(areas) // 2]  # binding: half of the points do not fit
    optimum = brute_force_optimum(TINY_NETWORK, template, objective, budget)
    model = NodeModel(TINY_NETWORK, template, objective, budget)
    for hw in hardware_points(template):
        if architecture_area_mm2(template.instantiate(hw)) <= budget:
            point_opt = brute_force_optimum(TINY_NETWORK, ArchTemplate(
                "pt", template.base, (hw.mesh_x, hw.mesh_x), (hw.mesh_y, hw.mesh_y),
                tuple((n, v, v) for n, v in hw.sizes_words)), objective, budget)
            assert model.solve(point_box(hw)).value <= point_opt
        else:
            assert math.isinf(model.solve(point_box(hw)).value)
    result = branch_and_bound(TINY_NETWORK, template, objective, budget, incumbent=optimum, time_limit_s=30)
    assert 0 < result.lower_bound <= optimum
    assert optimum <= 1.05 * result.lower_bound
    assert result.complete
    assert result.gap == pytest.approx(optimum / result.lower_bound - 1)


REAL_LAYERS = [e.layer for e in load_network("resnet18").layers[::3]] + \
    [e.layer for e in load_network("mobilenetv2").layers[1:4]]


@pytest.mark.parametrize("template_name", ["simple", "eyeriss-like"])
def test_layer_floors_below_random_mappings_of_real_layers(template_name):
    template = load_template(template_name)
    rng = np.random.default_rng(7)
    from formulation.model.exact import evaluate_batch

    for layer in REAL_LAYERS:
        hw = Hardware(int(rng.integers(template.mesh_x_range[0], template.mesh_x_range[1] + 1)),
                      int(rng.integers(template.mesh_y_range[0], template.mesh_y_range[1] + 1)),
                      tuple((n, int(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
                            for n, lo, hi in template.size_ranges))
        arch = template.instantiate(hw)
        mappings = sample_mappings(layer, arch, 400, rng, bypass=True)
        ev = evaluate_batch(layer, arch, mappings)
        terms = layer_terms(layer, template, point_box(hw))
        assert terms.energy_pJ <= ev.energy_pJ.min(), layer.name
        assert terms.cycles_floor <= ev.cycles.min(), layer.name
        for energy, cycles in zip(ev.energy_pJ, ev.cycles):  # each mapping above the front's step at its cycles
            assert energy >= min(e for c, e in terms.front if c <= cycles) * (1 - 1e-12), layer.name


def test_bound_below_the_designs_the_searches_find():
    from search.baselines.random_search import run_random_search
    from search.design import Goal
    from search.optimize import optimize

    network = Network("pair", tuple(load_network("resnet18").layers[8:10]))
    template = load_template("simple")
    goal = Goal(Objective.EDP, 1.0)
    bound = branch_and_bound(network, template, goal.objective, goal.area_budget_mm2, time_limit_s=3).lower_bound
    found = [optimize(network, template, goal, starts=1, jobs=1, seed=0, time_limit_s=8).best,
             run_random_search(network, template, goal, seed=0, time_limit_s=3).best]
    for best in found:
        assert best is not None and best.score.feasible
        assert bound <= best.score.edp


def test_the_bound_is_not_a_point_bound_everywhere():
    """The node bound grows as the box shrinks towards a bad corner (so branching tightens it)."""
    template = tiny_template()
    model = NodeModel(TINY_NETWORK, template, Objective.LATENCY, None)
    whole = model.solve(HardwareBox.of_template(template)).value
    small = model.solve(HardwareBox((1, 1), (1, 1), (("GlobalBuffer", 30, 32), ("RegisterFile", 7, 8)))).value
    assert small > whole


@pytest.mark.parametrize("objective", [Objective.POWER, Objective.EDP], ids=["power", "edp"])
def test_attach_bound_sets_the_gap_and_the_status(objective):
    """``optimal`` only with a proven gap within tolerance; power has no bound and keeps the search's status."""
    from search.bnb import attach_bound
    from search.design import Goal

    template = tiny_template()
    optimum = brute_force_optimum(TINY_NETWORK, template, Objective.EDP, 1.0)
    doc = {"status": "converged", "totals": {"feasible": True, "edp": optimum * 10, "energy_pJ": 1.0, "latency_s": 1.0}}
    result = attach_bound(doc, TINY_NETWORK, template, Goal(objective, 1.0), time_limit_s=30, rel_tol=0.01)
    if objective is Objective.POWER:
        assert result is None and doc["lower_bound"] is None and doc["gap"] is None
        assert doc["status"] == "converged" and doc["bound"]["covers"].startswith("no bound")
        return
    assert doc["lower_bound"] <= optimum and doc["gap"] == pytest.approx(optimum * 10 / doc["lower_bound"] - 1)
    assert doc["status"] == "converged"  # a gap of at least 900% is not within 1%
    exact = {"status": "time_limit", "totals": {"feasible": True, "edp": doc["lower_bound"] * 1.005}}
    attach_bound(exact, TINY_NETWORK, template, Goal(objective, 1.0), time_limit_s=30, rel_tol=0.01)
    assert exact["status"] == "optimal"


def test_energy_bound_under_a_latency_cap_never_exceeds_the_brute_force_minimum():
    """The ε-constraint band: min energy over designs no slower than ``cap`` is at least the capped bound."""
    template = tiny_template()
    clock = template.base.clock_GHz * 1e9
    designs = []  # (energy, latency) of every hardware point's per-layer front combinations
    for hw in hardware_points(template):
        fronts = [_front(*exhaustive(e.layer, template, hw)) for e in TINY_NETWORK.layers]
        for combo in itertools.product(*fronts):
            designs.append((sum(n.count * c[0] for n, c in zip(TINY_NETWORK.layers, combo)),
                            sum(n.count * c[1] for n, c in zip(TINY_NETWORK.layers, combo)) / clock))
    latencies = sorted({t for _, t in designs})
    fastest_bound = branch_and_bound(TINY_NETWORK, template, Objective.LATENCY, None, time_limit_s=30).lower_bound
    assert fastest_bound <= latencies[0]
    for cap in latencies[:: max(1, len(latencies) // 4)]:
        best = min(e for e, t in designs if t <= cap)
        bound = branch_and_bound(TINY_NETWORK, template, Objective.ENERGY, None, latency_cap_s=cap,
                                 time_limit_s=30).lower_bound
        assert bound <= best
    below = branch_and_bound(TINY_NETWORK, template, Objective.ENERGY, None, latency_cap_s=fastest_bound * 0.5,
                             time_limit_s=30)
    assert math.isinf(below.lower_bound)  # no design is that fast, and the bound says so


@pytest.mark.parametrize("objective", [Objective.EDP, Objective.ENERGY, Objective.LATENCY], ids=lambda o: o.value)
def test_branch_and_bound_returns_the_enumerated_optimum(objective):
    """On a template small enough to enumerate, exact leaves make the bound the optimum itself."""
    template = tiny_template(tight=True)
    areas = sorted(architecture_area_mm2(template.instantiate(hw)) for hw in hardware_points(template))
    budget = areas[len(areas) // 2]
    optimum = brute_force_optimum(TINY_NETWORK, template, objective, budget)
    result = branch_and_bound(TINY_NETWORK, template, objective, budget, time_limit_s=300, rel_tol=0.0)
    assert result.complete and result.exact_leaves >= 1
    assert result.leaf_optimum == pytest.approx(optimum, rel=1e-9)
    assert result.lower_bound == pytest.approx(optimum, rel=1e-9)


@pytest.mark.parametrize("objective", [Objective.EDP, Objective.LATENCY], ids=lambda o: o.value)
def test_the_search_stops_once_the_least_bound_is_an_unsplittable_nodes(objective):
    """Without exact leaves, once the least bound belongs to an unsplittable box the branch-and-bound
    stops (complete, nodes still open): going on to split every other box until none is left gives
    the same lower bound with more nodes, and the bound is at most every point's node bound."""
    import search.bnb as bnb
    from unittest.mock import patch

    template = tiny_template()
    stopped = branch_and_bound(TINY_NETWORK, template, objective, None, time_limit_s=60, exact_leaves=False)
    with patch.object(bnb, "STOP_AT_FINAL", False):
        full = branch_and_bound(TINY_NETWORK, template, objective, None, time_limit_s=60, exact_leaves=False)
    assert stopped.complete and stopped.open_nodes > 0 and full.open_nodes == 0
    assert full.nodes > stopped.nodes
    assert stopped.lower_bound == full.lower_bound
    model = NodeModel(TINY_NETWORK, template, objective, None)
    assert stopped.lower_bound <= min(model.solve(point_box(hw)).value for hw in hardware_points(template))


@pytest.mark.parametrize("objective", [Objective.EDP, Objective.ENERGY])
def test_the_least_box_handed_out_holds_the_least_bound_at_the_time(objective):
    """``on_least`` gets the box with the least bound before each step: bounds only rise as boxes are
    split, so each box handed out bounds at most the final lower bound, and the last one handed out
    by a run that stops at an unsplittable box is that box, whose bound is the lower bound."""
    from search.bnb import _split_variable

    template = tiny_template()
    offered = []
    result = branch_and_bound(TINY_NETWORK, template, objective, None, time_limit_s=60, exact_leaves=False,
                              on_least=offered.append)
    model = NodeModel(TINY_NETWORK, template, objective, None)
    assert offered and result.complete
    assert all(model.solve(box).value <= result.lower_bound * (1 + 1e-9) for box in offered)
    assert _split_variable(offered[-1]) is None
    assert model.solve(offered[-1]).value == pytest.approx(result.lower_bound, rel=1e-9)


def test_a_child_left_unsolved_at_the_time_limit_keeps_its_parents_bound(monkeypatch):
    """When the time runs out between two children, the second is pushed with its parent's bound
    (not solved): the run ends within about one node solve of its limit, every child box stays
    covered, and the lower bound is at most each child's own bound."""
    import search.bnb as bnb

    template = tiny_template()
    root = HardwareBox.of_template(template)

    class Slow(NodeModel):
        def solve(self, box):
            if box != root:
                time.sleep(2.0)  # the first child uses up the time
            return super().solve(box)

    monkeypatch.setattr(bnb, "NodeModel", Slow)
    t0 = time.monotonic()
    result = branch_and_bound(TINY_NETWORK, template, Objective.EDP, None, time_limit_s=2.0, exact_leaves=False)
    wall = time.monotonic() - t0
    model = NodeModel(TINY_NETWORK, template, Objective.EDP, None)
    children = root.split(bnb._split_variable(root))
    assert result.nodes == 2 and result.open_nodes == 2  # the root and one child solved, both children open
    assert result.lower_bound == pytest.approx(model.solve(root).value, rel=1e-9)
    assert all(result.lower_bound <= model.solve(c).value * (1 + 1e-9) for c in children)
    assert result.wall_s < 2.0 + 2.0 + 1.0 and wall < 2.0 + 2.0 + 1.5


def test_both_children_left_unsolved_keep_the_parents_bound(monkeypatch):
    """Time running out right after a node is taken leaves both children unsolved with the same bound
    (the parent's); the heap orders them without comparing boxes, and the bound is the root's."""
    import search.bnb as bnb

    calls = []

    class Clock:
        @staticmethod
        def monotonic():
            calls.append(None)
            return 0.0 if len(calls) <= 2 else 100.0  # the start and the first loop check, then out of time

    monkeypatch.setattr(bnb, "time", Clock)
    template = tiny_template()
    result = branch_and_bound(TINY_NETWORK, template, Objective.LATENCY, None, time_limit_s=1.0, exact_leaves=False)
    root_value = NodeModel(TINY_NETWORK, template, Objective.LATENCY, None).solve(HardwareBox.of_template(template)).value
    assert result.nodes == 1 and result.open_nodes == 2
    assert result.lower_bound == root_value


def test_a_proven_front_is_kept_and_a_point_reached_again_costs_no_mapper_run(monkeypatch):
    """``search.exact_leaf`` keeps proofs: the second evaluation of a hardware point gives the same exact
    optimum (the brute-force one) without running the mapper; a point not proven in time is not kept."""
    import time

    import search.mapper as mapper_package
    from search import exact_leaf

    template = tiny_template()
    hw = next(iter(hardware_points(template)))
    arch = template.instantiate(hw)
    monkeypatch.setattr(exact_leaf, "_PROVEN", {})
    assert exact_leaf.exact_point_value(TINY_NETWORK, arch, Objective.ENERGY, deadline=time.monotonic() - 1) is None
    assert exact_leaf._PROVEN == {}
    first = exact_leaf.exact_point_value(TINY_NETWORK, arch, Objective.ENERGY, deadline=time.monotonic() + 60)
    brute = sum(e.count * exhaustive(e.layer, template, hw)[0].min() for e in TINY_NETWORK.layers)
    assert first == pytest.approx(brute, rel=1e-9)

    def no_mapper(*_args, **_kwargs):
        raise AssertionError("the mapper ran for a point already proven")

    monkeypatch.setattr(mapper_package, "map_layer", no_mapper)
    assert exact_leaf.exact_point_value(TINY_NETWORK, arch, Objective.ENERGY, deadline=time.monotonic() + 60) == first
