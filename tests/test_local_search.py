"""The one local search: pluggable scoring (goal or weighted scalarization) and the Budget that stops it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from formulation.goals import Objective, seconds
from formulation.model.exact import evaluate_batch
from formulation.model.validation import mapping_violations
from formulation.specs.catalog import load_arch
from formulation.specs.template import default_template
from formulation.specs.types import Layer, Network, NetworkLayer
from formulation.technology import architecture_area_mm2
from search.baselines.space import DesignSpace
from search.baselines.weighted_sum import Scalarization, WeightedScore
from search.design import Goal, evaluate_design
from search.local_search import GoalScore, layer_neighbours, local_search
from search.outcome import Budget

NET = Network("two", (NetworkLayer(Layer("conv", N=1, C=8, K=16, P=7, Q=7, R=3, S=3), 2),
                      NetworkLayer(Layer("fc", N=1, C=32, K=24, P=1, Q=1), 1)))
GOAL = Goal(Objective.EDP, area_budget_mm2=0.5)


@pytest.fixture(scope="module")
def start():
    template = default_template(load_arch("simple"))
    space = DesignSpace(NET, template)
    genes = space.legalize(space.sample(1, np.random.default_rng(3), GOAL))
    return template, space.decode(genes[0])


def test_budget_records_why_it_stopped():
    budget = Budget(max_evaluations=10)
    assert not budget.exhausted() and budget.reason == "converged" and budget.stopped_by is None
    budget.charge(10)
    assert budget.exhausted() and budget.stopped_by == "evaluations" and not budget.timed_out
    late = Budget(time_limit_s=0.0)
    time.sleep(0.001)
    assert late.exhausted() and late.timed_out and late.remaining_s() == 0.0


def test_an_evaluation_budget_is_never_exceeded_and_gives_the_same_result(start):
    template, design = start
    runs = [local_search(NET, template, design, GOAL, budget=Budget(max_evaluations=300), kicks_per_layer=2)
            for _ in range(2)]
    (a, budget_a), (b, budget_b) = runs
    assert budget_a.evaluations <= 300 and budget_a.stopped_by == "evaluations"
    assert budget_a.evaluations == budget_b.evaluations
    assert a.score.energy_pJ == b.score.energy_pJ and a.score.latency_s == b.score.latency_s


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_a_weighted_score_descends_to_a_local_optimum_of_the_scalarization(start, weight):
    template, design = start
    score = WeightedScore(Scalarization(weight), GOAL)
    before = score.of(evaluate_design(NET, template, design, GOAL))
    best, budget = local_search(NET, template, design, GOAL, fixed_hardware=True, kicks_per_layer=0, score=score)
    assert budget.reason == "converged"
    value = score.of(best)
    assert value <= before
    # no single move of one layer's mapping lowers the scalarized network totals any further
    arch = template.instantiate(best.design.hardware)
    area = architecture_area_mm2(arch)
    counts = np.array([e.count for e in NET.layers], dtype=float)
    for i, entry in enumerate(NET.layers):
        nbrs = layer_neighbours(arch, best.design.mappings[i])
        nbrs = nbrs.take(np.flatnonzero(~mapping_violations(entry.layer, arch, nbrs)))
        ev = evaluate_batch(entry.layer, arch, nbrs)
        energy = counts @ best.layer_energy_pJ + counts[i] * (ev.energy_pJ - best.layer_energy_pJ[i])
        latency = seconds(counts @ best.layer_cycles + counts[i] * (ev.cycles - best.layer_cycles[i]), arch.clock_GHz)
        assert not any(score.improves(v, value) for v in score.values(energy, latency, area))


def test_the_goal_score_is_the_goal_objective(start):
    template, design = start
    ev = evaluate_design(NET, template, design, GOAL)
    score = GoalScore(GOAL)
    assert score.of(ev) == ev.score.value(Objective.EDP)
    arch = template.instantiate(design.hardware)
    counts = np.array([e.count for e in NET.layers], dtype=float)
    total = score.total(ev.layer_energy_pJ, ev.layer_cycles, counts, arch, ev.score.area_mm2)
    assert total == pytest.approx(ev.score.edp, rel=1e-12)
    assert score.improves(0.5, 1.0) and not score.improves(1.0 - 1e-12, 1.0)
