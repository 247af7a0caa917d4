"""The baseline methods: legal feasible designs, determinism under an evaluation budget, and their own claims."""

from __future__ import annotations

import math

import numpy as np
import pytest

from formulation.specs.catalog import load_arch
from formulation.model.encoding import decode as decode_mapping
from formulation.goals import Caps, Objective
from formulation.specs.types import Layer, Network, NetworkLayer
from formulation.technology import architecture_area_mm2
from formulation.specs.template import default_template
from formulation.model.validation import mapping_violations, validate_mapping
import search.baselines
from search.baselines.evaluation import Evaluator
from search.baselines.space import DesignSpace, legal_sizes, pinned_template
from search.design import Goal, evaluate_design
from search.optimize import fixed_template
from search.outcome import OptimizeStatus

BUDGET = {"ga": 480, "nsga2": 480, "random": 480, "weighted-sum": 1500, "bo": 480}
OPTIONS = {"ga": {"pop_size": 16}, "nsga2": {"pop_size": 16}, "random": {}, "weighted-sum": {"n_weights": 4}, "bo": {}}
GOAL = Goal(Objective.EDP, area_budget_mm2=0.5)
# the run function of each baseline (nsga2: the front of ``--method ga --pareto``)
METHODS = {"ga": "run_ga", "nsga2": "run_ga_pareto", "random": "run_random_search", "weighted-sum": "run_weighted_sum",
           "bo": "run_bo"}


def get_method(name: str):
    return getattr(search.baselines, METHODS[name])


def _ipopt_available() -> bool:
    from formulation.relaxed.solvers import get_backend

    return get_backend("cyipopt").available()


def _methods():
    return [pytest.param(m, marks=pytest.mark.skipif(m == "weighted-sum" and not _ipopt_available(),
                                                    reason="cyipopt is not installed")) for m in sorted(METHODS)]


@pytest.fixture(scope="module")
def network() -> Network:
    return Network("two-layers", (NetworkLayer(Layer("conv3x3", N=1, C=16, K=32, P=14, Q=14, R=3, S=3), 2),
                                  NetworkLayer(Layer("fc", N=1, C=64, K=96, P=1, Q=1), 1)))


@pytest.fixture(scope="module")
def template():
    return default_template(load_arch("simple"))


@pytest.fixture(scope="module")
def runs(network, template):
    """Each method run twice with the same seed and evaluation budget (computed on first use)."""
    cache = {}

    def get(method: str):
        if method not in cache:
            fn = get_method(method)
            cache[method] = [fn(network, template, GOAL, seed=7, time_limit_s=300, max_evaluations=BUDGET[method],
                                **OPTIONS[method]) for _ in range(2)]
        return cache[method]

    return get


def _assert_legal(network, template, evaluated, goal):
    hw = evaluated.design.hardware
    assert template.mesh_x_range[0] <= hw.mesh_x <= template.mesh_x_range[1]
    assert template.mesh_y_range[0] <= hw.mesh_y <= template.mesh_y_range[1]
    for name, lo, hi in template.size_ranges:
        assert hw.size_of(name) in legal_sizes(lo, hi)
        assert hw.size_of(name) in (lo, hi) or math.log2(hw.size_of(name)).is_integer()
    arch = template.instantiate(hw)
    for entry, arrays in zip(network.layers, evaluated.design.mappings):
        validate_mapping(entry.layer, arch, decode_mapping(arrays, arch))  # raises on anything illegal
    if goal.area_budget_mm2 is not None:
        assert architecture_area_mm2(arch) <= goal.area_budget_mm2 * (1 + 1e-9)
    again = evaluate_design(network, template, evaluated.design, goal)  # the score is the exact model's
    assert again.score.feasible and evaluated.score.feasible
    assert again.score.energy_pJ == pytest.approx(evaluated.score.energy_pJ, rel=1e-12)
    assert again.score.latency_s == pytest.approx(evaluated.score.latency_s, rel=1e-12)


# ---- the genome -------------------------------------------------------------------------------------

def test_legalize_gives_legal_canonical_genomes(network, template):
    space = DesignSpace(network, template)
    rng = np.random.default_rng(0)
    genes = space.legalize(space.sample(64, rng, GOAL))
    assert genes.shape == (64, space.n_var)
    assert (genes >= space.xl).all() and (genes <= space.xu).all()
    assert np.array_equal(space.legalize(genes), genes)  # legal genomes are fixed points of the repair
    for g in genes[:16]:
        design = space.decode(g)
        arch = template.instantiate(design.hardware)
        for entry, arrays in zip(network.layers, design.mappings):
            assert not mapping_violations(entry.layer, arch, arrays).any()
        assert np.array_equal(space.encode(design), g)
        assert space.fits_budget(g, GOAL)  # hardware is drawn within the budget when possible


def test_decode_then_repair_is_the_repair_operator(network, template):
    space = DesignSpace(network, template)
    raw = space.sample(32, np.random.default_rng(1), GOAL)
    legal = space.legalize(raw)
    overflowing = 0
    for r, l in zip(raw, legal):
        design = space.decode(r)
        arch = template.instantiate(design.hardware)
        overflowing += any(mapping_violations(e.layer, arch, m).any() for e, m in zip(network.layers, design.mappings))
        assert np.array_equal(space.encode(space.repair_design(design)), l)
    assert overflowing > 0  # the sample did exercise the repair


def test_evaluator_matches_evaluate_design_and_counts(network, template):
    space = DesignSpace(network, template)
    genes = space.legalize(space.sample(12, np.random.default_rng(2), GOAL))
    evaluator = Evaluator(space, GOAL)
    scores = evaluator.evaluate(genes)
    assert evaluator.evaluations == 12 * len(network.layers)
    for r in range(12):
        ref = evaluate_design(network, template, space.decode(genes[r]), GOAL)
        assert scores.values[r] == pytest.approx(ref.score.value(GOAL.objective), rel=1e-12)
    evaluator.evaluate(genes)
    assert evaluator.evaluations == 12 * len(network.layers)  # cached


def test_pinned_template_and_legal_sizes():
    assert list(legal_sizes(16, 4096)) == [2 ** k for k in range(4, 13)]
    assert list(legal_sizes(3456, 9000)) == [3456, 4096, 8192, 9000]
    pinned = pinned_template(fixed_template(load_arch("eyeriss-like")))
    assert pinned.size_ranges[0][1:] == (55296, 55296)


# ---- every method -----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", _methods())
def test_method_returns_feasible_legal_designs_within_budget(method, runs, network, template):
    result = runs(method)[0]
    assert result.method == method
    assert result.extra["stopped_by"] in ("evaluations", "converged", "generations")
    assert result.status is (OptimizeStatus.CONVERGED if result.extra["stopped_by"] == "converged"
                             else OptimizeStatus.EVALUATION_LIMIT)
    _assert_legal(network, template, result.best, GOAL)
    assert 0 < result.evaluations <= BUDGET[method] + (16 * len(network.layers) if method in ("ga", "nsga2") else 0)
    for design in result.extra.get("front", ()):
        _assert_legal(network, template, design, GOAL)


@pytest.mark.parametrize("method", _methods())
def test_same_seed_and_evaluation_budget_give_the_same_result(method, runs):
    a, b = runs(method)
    assert a.evaluations == b.evaluations
    assert a.best.design.hardware == b.best.design.hardware
    for ma, mb in zip(a.best.design.mappings, b.best.design.mappings):
        for field in ("temporal", "spatial_x", "spatial_y", "order", "keep"):
            assert np.array_equal(getattr(ma, field), getattr(mb, field))
    assert a.best.score == b.best.score
    assert [h[1:] for h in a.extra["history"]] == [h[1:] for h in b.extra["history"]]
    assert [d.score for d in a.extra.get("front", ())] == [d.score for d in b.extra.get("front", ())]


@pytest.mark.parametrize("method", _methods())
def test_history_is_monotone_and_ends_at_the_best(method, runs):
    result = runs(method)[0]
    history = result.extra["history"]
    assert history
    walls, evaluations, values = zip(*history)
    assert all(b >= a for a, b in zip(walls, walls[1:]))
    assert all(b >= a for a, b in zip(evaluations, evaluations[1:]))
    assert all(b <= a for a, b in zip(values, values[1:]))
    assert evaluations[-1] == result.evaluations
    assert values[-1] == pytest.approx(result.best.score.value(GOAL.objective), rel=1e-12)


def test_ga_improves_over_its_initial_population(runs):
    result = runs("ga")[0]
    assert math.isfinite(result.extra["initial_best"])
    assert result.best.score.value(GOAL.objective) < result.extra["initial_best"] * 0.99
    assert result.extra["generations"] > 5


@pytest.mark.parametrize("method", [m for m in _methods() if m.values[0] in ("nsga2", "weighted-sum")])
def test_pareto_methods_return_non_dominated_sets(method, runs):
    result = runs(method)[0]
    front = result.extra["front"]
    assert len(front) >= 2
    points = [(d.score.power_mW, d.score.latency_s) for d in front]
    for i, (p, t) in enumerate(points):
        for j, (q, u) in enumerate(points):
            if i != j:
                assert not (q <= p and u <= t), f"{points[j]} dominates {points[i]}"
    assert [t for _, t in points] == sorted(t for _, t in points)
    assert result.best.score.value(GOAL.objective) == min(d.score.value(GOAL.objective) for d in front)


def test_nsga2_stops_at_max_generations(network, template):
    from search.baselines import run_ga_pareto

    result = run_ga_pareto(network, template, GOAL, seed=3, time_limit_s=300, max_generations=4, pop_size=12)
    assert result.extra["stopped_by"] == "generations" and result.extra["generations"] == 4
    assert result.extra["front"]


def test_random_search_best_is_the_min_over_its_samples(runs, network):
    result = runs("random")[0]
    values = result.extra["values"]
    assert len(values) == result.extra["designs"] == BUDGET["random"] // len(network.layers)
    assert result.best.score.value(GOAL.objective) == np.min(values)
    assert np.isfinite(values).all()  # hardware is drawn within the area budget


def test_ga_respects_caps_and_fixed_hardware():
    arch = load_arch("eyeriss-like")
    network = Network("one", (NetworkLayer(Layer("conv", N=1, C=16, K=16, P=7, Q=7, R=3, S=3)),))
    template = fixed_template(arch)
    free = get_method("random")(network, template, Goal(Objective.ENERGY), seed=0, time_limit_s=300,
                                max_evaluations=64, fixed_hardware=True)
    cap = free.best.score.latency_s * 1.5
    goal = Goal(Objective.ENERGY, caps=Caps(latency_s=cap))
    result = get_method("ga")(network, template, goal, seed=0, time_limit_s=300, max_evaluations=200,
                              fixed_hardware=True, pop_size=12)
    assert result.best.design.hardware == template.base_hardware()
    assert result.best.score.latency_s <= cap
    _assert_legal(network, template, result.best, goal)
    # eyeriss-like levels keep one tensor each; a legal design never keeps what a level cannot hold
    keeps = np.array([[t in lv.keeps for t in range(3)] for lv in arch.levels])
    assert not (result.best.design.mappings[0].keep[0] & ~keeps).any()


@pytest.mark.parametrize("method", _methods())
def test_an_impossible_area_budget_is_infeasible(method, network, template):
    result = get_method(method)(network, template, Goal(Objective.EDP, area_budget_mm2=1e-6), seed=0,
                                time_limit_s=30, max_evaluations=100)
    assert result.status is OptimizeStatus.INFEASIBLE
    assert result.best is None and result.evaluations == 0
    assert "area budget" in result.binding[0]


def test_progress_callback_sees_every_history_entry(network, template):
    seen = []
    result = get_method("random")(network, template, GOAL, seed=1, time_limit_s=300, max_evaluations=256,
                                  on_progress=seen.append)
    assert [(p.evaluations, p.best_value) for p in seen] == [h[1:] for h in result.extra["history"]]
    assert all(p.method == "random" for p in seen)


def test_jobs_only_spread_the_work(network, template):
    one = get_method("random")(network, template, GOAL, seed=5, time_limit_s=300, max_evaluations=192)
    two = get_method("random")(network, template, GOAL, seed=5, time_limit_s=300, max_evaluations=192, jobs=2)
    assert one.best.score == two.best.score and one.evaluations == two.evaluations
    assert np.array_equal(one.extra["values"], two.extra["values"])
