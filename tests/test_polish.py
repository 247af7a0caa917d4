"""Polishing a design with the exact mapper (search.polish, ``optimize --polish-time``)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import search.polish as polish_module
from codesign.cli import main
from formulation.goals import Caps, Objective
from formulation.model.exact import evaluate_batch
from formulation.model.validation import mapping_violations
from formulation.specs.catalog import load_arch
from formulation.specs.loading import layer_from_dict
from formulation.specs.types import Network, NetworkLayer
from search.design import Design, Goal, evaluate_design
from search.optimize import fixed_template
from search.polish import best_combination, polish
from search.sampling import sample_mappings

LAYERS = ({"name": "pw", "N": 1, "C": 8, "K": 16, "P": 4, "Q": 4},
          {"name": "fc", "N": 1, "C": 32, "K": 16, "P": 1, "Q": 1})


def brute_force(energy, cycles, counts, objective, latency_cap_cycles=None):
    """The least network objective over every choice, from the totals directly (1 GHz: 1 cycle = 1 ns)."""
    best = (np.inf, None)
    for choice in itertools.product(*(range(len(e)) for e in energy)):
        e = sum(counts[i] * energy[i][k] for i, k in enumerate(choice))
        c = sum(counts[i] * cycles[i][k] for i, k in enumerate(choice))
        if latency_cap_cycles is not None and c > latency_cap_cycles * (1 + 1e-9):
            continue
        v = {Objective.EDP: e * c * 1e-9, Objective.ENERGY: e, Objective.LATENCY: c * 1e-9}[objective]
        if v < best[0]:
            best = (v, choice)
    return best[0]


def network_value(choice, energy, cycles, counts, objective):
    e = sum(counts[i] * energy[i][k] for i, k in enumerate(choice))
    c = sum(counts[i] * cycles[i][k] for i, k in enumerate(choice))
    return {Objective.EDP: e * c * 1e-9, Objective.ENERGY: e, Objective.LATENCY: c * 1e-9}[objective]


instances = st.lists(st.lists(st.tuples(st.floats(1.0, 1e6), st.integers(1, 10**6)), min_size=1, max_size=4),
                     min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(instances, st.sampled_from([Objective.EDP, Objective.ENERGY, Objective.LATENCY]), st.booleans())
def test_best_combination_is_the_brute_force_optimum(layers, objective, capped):
    energy = [np.array([e for e, _ in cands]) for cands in layers]
    cycles = [np.array([float(c) for _, c in cands]) for cands in layers]
    counts = np.arange(1, len(layers) + 1, dtype=float)
    cap_cycles = float(sum(counts[i] * np.median(c) for i, c in enumerate(cycles))) if capped else None
    goal = Goal(objective, None, Caps(latency_s=cap_cycles * 1e-9 if capped else None))
    expected = brute_force(energy, cycles, counts, objective, cap_cycles)
    choice = best_combination(energy, cycles, counts, 1.0, 0.0, goal)
    if np.isfinite(expected):
        assert network_value(choice, energy, cycles, counts, objective) == pytest.approx(expected, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(instances)
def test_coordinate_descent_is_a_local_optimum_never_worse_than_the_start(layers):
    energy = [np.array([e for e, _ in cands]) for cands in layers]
    cycles = [np.array([float(c) for _, c in cands]) for cands in layers]
    counts = np.ones(len(energy))
    goal = Goal(Objective.EDP)
    old = polish_module.MAX_ENUMERATED
    polish_module.MAX_ENUMERATED = 0  # force the descent
    try:
        choice = best_combination(energy, cycles, counts, 1.0, 0.0, goal)
    finally:
        polish_module.MAX_ENUMERATED = old
    value = network_value(choice, energy, cycles, counts, Objective.EDP)
    assert value <= network_value((0,) * len(energy), energy, cycles, counts, Objective.EDP)
    for i, cands in enumerate(energy):  # no single change improves it
        for k in range(len(cands)):
            trial = choice[:i] + (k,) + choice[i + 1:]
            assert network_value(trial, energy, cycles, counts, Objective.EDP) >= value * (1 - 1e-12)


def _poor_design(goal):
    """A two-layer design on ``simple`` whose mappings are the worst of a few random legal ones (room to improve)."""
    arch = load_arch("simple")
    template = fixed_template(arch)
    network = Network("two", tuple(NetworkLayer(layer_from_dict(d), count) for d, count in zip(LAYERS, (2, 1))))
    rng = np.random.default_rng(3)
    poor = []
    for entry in network.layers:
        batch = sample_mappings(entry.layer, arch, 20, rng)
        ev = evaluate_batch(entry.layer, arch, batch)
        poor.append(batch.take(slice(int(np.argmax(ev.energy_pJ)), int(np.argmax(ev.energy_pJ)) + 1)))
    return arch, template, network, evaluate_design(network, template, Design(template.base_hardware(), tuple(poor)),
                                                    goal)


@pytest.mark.parametrize("objective", [Objective.EDP, Objective.ENERGY, Objective.POWER])
def test_polish_improves_a_poor_design_and_keeps_it_legal(objective):
    """Power is polished under a latency cap (here the poor design's own latency), which it keeps."""
    goal = Goal(objective)
    arch, template, network, start = _poor_design(goal)
    if objective is Objective.POWER:
        goal = Goal(objective, caps=Caps(latency_s=start.score.latency_s))
        start = evaluate_design(network, template, start.design, goal)
    done = []
    best, report = polish(network, template, goal, start, time_limit_s=20.0, on_layer_done=done.append)
    assert done == ["pw", "fc"]
    assert report.before == start.score.value(objective)
    assert report.after == best.score.value(objective) < report.before
    assert set(report.changed) <= {"pw", "fc"} and report.changed
    for entry, arrays in zip(network.layers, best.design.mappings):
        assert not mapping_violations(entry.layer, arch, arrays).any()
    again = evaluate_design(network, template, best.design, goal)
    assert again.score.value(objective) == pytest.approx(report.after, rel=1e-12) and again.score.feasible
    assert objective is not Objective.POWER or again.score.latency_s <= goal.caps.latency_s


def test_power_without_a_latency_cap_is_not_polished():
    _, template, network, start = _poor_design(Goal(Objective.POWER))
    best, report = polish(network, template, Goal(Objective.POWER), start, time_limit_s=5.0)
    assert best is start and report.skipped and "latency cap" in report.skipped


def test_polish_time_with_an_evaluation_budget_is_one_line_exit_2(tmp_path, capsys):
    code = main(["optimize", "--network", "resnet18", "--arch-template", "simple", "--max-evaluations", "100",
                 "--polish-time", "5", "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--polish-time" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_optimize_writes_what_polishing_did(tmp_path, capsys):
    net = tmp_path / "net.json"
    net.write_text(json.dumps({"name": "two", "layers": [dict(d) for d in LAYERS]}))
    code = main(["optimize", "--network", str(net), "--arch", "simple", "--fixed-hardware", "--starts", "1",
                 "--jobs", "1", "--time-limit", "10", "--polish-time", "10", "--bound-time", "0",
                 "--out", str(tmp_path / "o"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads((tmp_path / "o" / "result.json").read_text())
    p = doc["polish"]
    assert p["objective"] == "edp" and p["after"] <= p["before"]
    assert doc["totals"]["edp"] == pytest.approx(p["after"], rel=1e-9)
    assert "polish: edp" in out


def test_a_stop_request_leaves_the_design_as_it_is():
    from search import stop

    arch = load_arch("simple")
    template = fixed_template(arch)
    network = Network("one", (NetworkLayer(layer_from_dict(LAYERS[0])),))
    mapping = sample_mappings(network.layers[0].layer, arch, 1, np.random.default_rng(0))
    start = evaluate_design(network, template, Design(template.base_hardware(), (mapping,)), Goal(Objective.EDP))
    stop.reset()
    stop.request_stop()
    try:
        best, report = polish(network, template, Goal(Objective.EDP), start, time_limit_s=30.0)
    finally:
        stop.reset()
    assert best is start and report.changed == () and report.proven == () and report.wall_s < 5.0
