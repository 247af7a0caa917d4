"""The Bayesian-optimization baseline (search.baselines.bo) on a tiny network, under an evaluation budget."""

from __future__ import annotations

import numpy as np
import pytest

from formulation.specs.catalog import load_arch
from formulation.specs.types import Layer, Network, NetworkLayer
from formulation.technology import architecture_area_mm2
from formulation.specs.template import default_template
from formulation.model.validation import mapping_violations
from search.baselines import bo
from search.baselines.space import DesignSpace
from search.design import Goal, evaluate_design
from search.outcome import OptimizeStatus
from search.rounding import fits_template

NET = Network("tiny", (NetworkLayer(Layer("conv", N=1, C=16, K=32, P=8, Q=8, R=3, S=3)),
                       NetworkLayer(Layer("pw", N=1, C=32, K=64, P=4, Q=4), count=2)))
TEMPLATE = default_template(load_arch("simple"))
GOAL = Goal(area_budget_mm2=1.0)
BUDGET = 1200


def _run(seed: int = 3, **kw):
    return bo.run_bo(NET, TEMPLATE, GOAL, seed=seed, time_limit_s=300.0, max_evaluations=BUDGET, n_init=4, **kw)


@pytest.fixture(scope="module")
def result():
    pytest.importorskip("botorch")
    return _run()


def _assert_legal(best, template, goal):
    design = best.design
    assert fits_template(template, design.hardware)
    arch = template.instantiate(design.hardware)
    assert architecture_area_mm2(arch) <= goal.area_budget_mm2 * (1 + 1e-9)
    for entry, mapping in zip(NET.layers, design.mappings):
        assert mapping.size == 1
        assert not mapping_violations(entry.layer, arch, mapping).any(), entry.layer.name
        assert (mapping.temporal * mapping.spatial).prod(axis=1).tolist() == [list(entry.layer.dims)]


def test_feasible_legal_design_within_budget(result):
    assert result.method == "bo"
    assert result.status is OptimizeStatus.EVALUATION_LIMIT and result.extra["stopped_by"] == "evaluations"
    assert 0 < result.evaluations <= BUDGET
    assert result.best is not None and result.best.score.feasible
    _assert_legal(result.best, TEMPLATE, GOAL)
    # the reported score is the exact model's
    again = evaluate_design(NET, TEMPLATE, result.best.design, GOAL)
    assert again.score.value(GOAL.objective) == pytest.approx(result.best.score.value(GOAL.objective), rel=1e-12)
    assert result.extra["hardware_points"] > result.extra["n_init"]  # the GP proposed hardware too


def test_improves_over_initial_design(result):
    assert np.isfinite(result.extra["initial_best"])
    assert result.best.score.value(GOAL.objective) < result.extra["initial_best"]


def test_history_is_monotone(result):
    history = result.extra["history"]
    assert len(history) >= 2
    walls, evals, best = (np.array(col, dtype=float) for col in zip(*history))
    assert np.all(np.diff(walls) >= 0) and np.all(np.diff(evals) >= 0) and np.all(np.diff(best) <= 0)
    assert evals[-1] == result.evaluations
    assert best[-1] == result.best.score.value(GOAL.objective)


def test_same_seed_same_result(result):
    again = _run()
    assert again.best.design.hardware == result.best.design.hardware
    assert again.best.score == result.best.score
    assert [h[1:] for h in again.extra["history"]] == [h[1:] for h in result.extra["history"]]
    for a, b in zip(again.best.design.mappings, result.best.design.mappings):
        assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("temporal", "spatial_x", "spatial_y",
                                                                           "order", "keep"))


def test_fixed_hardware_refines_mappings_only():
    r = bo.run_bo(NET, TEMPLATE, GOAL, seed=0, time_limit_s=60.0, max_evaluations=300, fixed_hardware=True)
    pinned = DesignSpace(NET, TEMPLATE, fixed_hardware=True)
    assert r.best is not None and r.evaluations <= 300
    assert r.best.design.hardware == pinned.hardware(np.zeros(pinned.n_hw, dtype=np.int64))
    _assert_legal(r.best, pinned.template, GOAL)


def test_area_budget_below_smallest_hardware_is_infeasible():
    r = bo.run_bo(NET, TEMPLATE, Goal(area_budget_mm2=1e-6), seed=0, time_limit_s=10.0, max_evaluations=100)
    assert r.status is OptimizeStatus.INFEASIBLE and r.best is None and r.evaluations == 0


@pytest.mark.parametrize("arch", ["simple", "eyeriss-like"])
def test_vectorized_area_matches_the_technology_model(arch):
    template = default_template(load_arch(arch))
    space = DesignSpace(NET, template)
    rows = space.sample_hardware(40, np.random.default_rng(0))
    expected = [architecture_area_mm2(template.instantiate(space.hardware(row))) for row in rows]
    assert np.allclose(bo.hardware_areas(space, rows), expected, rtol=1e-12)
