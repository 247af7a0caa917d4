"""ε-constraint and weighted-sum fronts, the ParetoFront type, and the ``codesign solve`` command.

The fronts use ResNet-18's first two layers (conv1 and the stage-1 3x3 convolution) on the
``simple`` template with a 0.5 mm2 area budget, where latency and power trade off over about a
factor of two; each sweep takes a few seconds.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from formulation.specs.catalog import load_arch, load_network
from formulation.goals import Caps
from formulation.relaxed.problem import RelaxedProblem
from formulation.relaxed.solvers import SolveStatus
from formulation.specs.types import Network, SpecError
from formulation.relaxed.sweep import ParetoFront, ParetoPoint, epsilon_constraint, tight_cycles, weighted_sum
from formulation.specs.template import default_template
from codesign.cli import main

pytest.importorskip("cyipopt")

N_POINTS = 5
AREA_BUDGET_MM2 = 0.5


def front_problem() -> RelaxedProblem:
    network = Network("resnet18-head", load_network("resnet18").layers[:2])
    return RelaxedProblem(network, default_template(load_arch("simple")), "edp", area_budget_mm2=AREA_BUDGET_MM2)


@pytest.fixture(scope="module")
def fronts():
    problem = front_problem()
    return problem, epsilon_constraint(problem, N_POINTS, primary="power"), weighted_sum(problem, N_POINTS,
                                                                                           primary="power")


def point(latency, primary, status=SolveStatus.OPTIMAL):
    return ParetoPoint(latency, primary, 0.0, 0.0, 0.0, status, 0.0, None if status is SolveStatus.ERROR
                       else np.zeros(1))


# ---- ParetoFront --------------------------------------------------------------------------------------

def test_non_dominated_keeps_the_staircase():
    front = ParetoFront("power", "test", (point(1, 10), point(2, 12), point(2, 8), point(3, 8), point(4, 5),
                                          point(0.5, 1, SolveStatus.ERROR), point(4, 5)))
    kept = front.non_dominated().points
    assert [(p.latency_s, p.primary) for p in kept] == [(1, 10), (2, 8), (4, 5)]


def test_hypervolume_is_the_exact_dominated_area():
    front = ParetoFront("power", "test", (point(1, 10), point(2, 8), point(4, 5), point(3, 9)))
    # staircase to ref (5, 11): [1,2]x[10,11] + [2,4]x[8,11] + [4,5]x[5,11]
    assert front.hypervolume((5, 11)) == pytest.approx(1 * 1 + 2 * 3 + 1 * 6)
    assert front.hypervolume((1, 11)) == 0.0  # nothing left of the reference latency
    assert ParetoFront("power", "test", ()).hypervolume((5, 11)) == 0.0


# ---- ε-constraint ------------------------------------------------------------------------------------

def test_epsilon_front_is_monotone_and_non_dominated(fronts):
    problem, eps, _ = fronts
    assert eps.method == "epsilon-constraint" and len(eps.points) == N_POINTS
    assert all(p.status is SolveStatus.OPTIMAL for p in eps.points), [p.status for p in eps.points]
    fast, slow = eps.anchors["fast"], eps.anchors["efficient"]
    assert slow.latency_s > 1.5 * fast.latency_s  # a real trade-off
    caps = [p.parameter for p in eps.points]
    assert caps == sorted(caps)
    assert caps[0] == pytest.approx(fast.latency_s * 1.001, rel=1e-9)
    assert caps[-1] == pytest.approx(slow.latency_s, rel=1e-9)
    assert np.allclose(np.diff(np.log(caps)), math.log(caps[1] / caps[0]))  # geometric
    for p in eps.points:
        assert p.latency_s <= p.parameter * (1 + 1e-6)
        assert problem.with_caps(Caps(latency_s=p.parameter)).violations(p.x) == []
    ordered = sorted(eps.points, key=lambda p: p.latency_s)
    for a, b in zip(ordered, ordered[1:]):
        assert a.latency_s < b.latency_s
        assert b.primary <= a.primary * (1 + 1e-6), (a, b)
    assert len(eps.non_dominated().points) == N_POINTS
    # power is energy over latency at every point
    for p in eps.points:
        assert p.power_mW == pytest.approx(p.energy_pJ / p.latency_s * 1e-9, rel=1e-9)
        assert p.primary == p.power_mW


def test_warm_started_sweep_beats_cold_solves_of_the_same_caps(fronts):
    from formulation.relaxed.solvers import get_backend

    problem, eps, _ = fronts
    solve = get_backend("cyipopt").solve
    cold = [solve(problem.with_objective("power", Caps(latency_s=p.parameter))) for p in eps.points]
    assert all(r.status is SolveStatus.OPTIMAL for r in cold)
    assert sum(p.iterations for p in eps.points) < sum(r.iterations for r in cold)
    for p, r in zip(eps.points, cold):
        capped = problem.with_objective("power", Caps(latency_s=p.parameter))
        assert p.primary == pytest.approx(capped.totals(r.x)["power_mW"].value, rel=1e-3)


def test_epsilon_front_of_energy_is_monotone():
    front = epsilon_constraint(front_problem(), 4, primary="energy")
    ordered = sorted(front.points, key=lambda p: p.latency_s)
    assert all(p.ok for p in ordered)
    for a, b in zip(ordered, ordered[1:]):
        assert b.primary <= a.primary * (1 + 1e-6)
    assert ordered[-1].primary == pytest.approx(front.anchors["efficient"].energy_pJ, rel=1e-4)


def test_epsilon_front_has_at_least_the_weighted_sum_hypervolume(fronts, capsys):
    _, eps, ws = fronts
    assert ws.method == "weighted-sum" and len(ws.points) == N_POINTS
    assert [p.parameter for p in ws.points] == [j / (N_POINTS - 1) for j in range(N_POINTS)]
    assert all(p.ok for p in ws.points)
    solved = [p for f in (eps, ws) for p in f.points]
    ref = (1.1 * max(p.latency_s for p in solved), 1.1 * max(p.primary for p in solved))
    hv_eps, hv_ws = eps.hypervolume(ref), ws.hypervolume(ref)
    box = ref[0] * ref[1]
    with capsys.disabled():
        print(f"\n  hypervolume (power vs latency, {N_POINTS} points, ref {ref[0]:.4g} s x {ref[1]:.4g} mW): "
              f"epsilon-constraint {hv_eps:.6g} ({hv_eps / box:.4f} of the box), "
              f"weighted sum {hv_ws:.6g} ({hv_ws / box:.4f})")
    assert hv_eps >= hv_ws
    assert hv_eps > 0


def test_weighted_sum_ends_are_the_anchors(fronts):
    _, _, ws = fronts
    fast, slow = ws.anchors["fast"], ws.anchors["efficient"]
    assert ws.points[0].latency_s == pytest.approx(fast.latency_s, rel=1e-4)
    assert ws.points[-1].primary == pytest.approx(slow.primary, rel=1e-3)


def test_tight_cycles_gives_the_real_latency():
    problem = front_problem().with_objective("energy")
    x = problem.initial_point()  # cycles one e above the MACs: slack in every layer
    tight = tight_cycles(problem, x)
    rows = [j for j, name in enumerate(problem.constraint_names) if name.startswith(("compute[", "bandwidth["))]
    g = problem.constraints(tight)
    assert np.max(g[rows]) == pytest.approx(0.0, abs=1e-12)
    assert problem.totals(tight)["latency_s"].value < problem.totals(x)["latency_s"].value
    assert problem.totals(tight)["energy_pJ"].value == problem.totals(x)["energy_pJ"].value


def test_bad_sweep_arguments_are_spec_errors():
    with pytest.raises(SpecError, match="primary"):
        epsilon_constraint(front_problem(), 3, primary="area")
    with pytest.raises(SpecError, match="n_points"):
        epsilon_constraint(front_problem(), 1)
    with pytest.raises(SpecError, match="unknown solver"):
        epsilon_constraint(front_problem(), 3, backend="no-such-solver")


# ---- codesign solve ------------------------------------------------------------------------------

@pytest.fixture
def network_file(tmp_path):
    path = tmp_path / "head.yaml"
    layers = [{"name": "conv", "N": 1, "C": 16, "K": 32, "P": 14, "Q": 14, "R": 3, "S": 3},
              {"name": "pw", "N": 1, "C": 32, "K": 64, "P": 7, "Q": 7, "Wstride": 2, "Hstride": 2, "count": 2}]
    path.write_text(yaml.safe_dump({"name": "head", "layers": layers}))
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_solve_json_has_the_documented_keys(capsys, network_file):
    code, out, err = run(capsys, "solve", "--network", network_file, "--area-budget", "0.5", "--json")
    assert code == 0, err
    doc = json.loads(out)
    for key in ("status", "objective", "solver", "wall_s", "hardware", "rounded_hardware", "totals", "layers",
                "binding", "iterations"):
        assert key in doc, key
    assert doc["status"] == "optimal" and doc["solver"] == "cyipopt" and doc["objective_kind"] == "edp"
    assert doc["objective"] == pytest.approx(doc["totals"]["energy_pJ"] * doc["totals"]["latency_s"], rel=1e-9)
    assert doc["objective_log"] == pytest.approx(math.log(doc["objective"]), abs=1e-6)
    assert doc["totals"]["area_mm2"] <= 0.5 * (1 + 1e-6)
    assert "area" in doc["binding"]
    assert [layer["name"] for layer in doc["layers"]] == ["conv", "pw"]
    assert set(doc["layers"][0]["tiling"]) == {"DRAM", "GlobalBuffer", "RegisterFile"}
    assert "pareto" not in doc


def test_solve_prints_a_summary_and_a_front(capsys, network_file):
    code, out, err = run(capsys, "solve", "--network", network_file, "--area-budget", "0.5", "--objective",
                         "latency", "--pareto", "3")
    assert code == 0, err
    assert "status optimal" in out and "hardware:" in out and "totals:" in out
    assert "power vs latency, epsilon-constraint, 3 points" in out
    assert out.count("optimal") >= 4


def test_solve_json_with_pareto_points(capsys, network_file):
    code, out, _ = run(capsys, "solve", "--network", network_file, "--area-budget", "0.5", "--pareto", "3",
                       "--json")
    assert code == 0
    pareto = json.loads(out)["pareto"]
    assert pareto["method"] == "epsilon-constraint" and pareto["primary"] == "power"
    assert len(pareto["points"]) == 3 and all(p["status"] == "optimal" for p in pareto["points"])


def test_solve_infeasible_names_the_binding_constraint(capsys, network_file):
    code, out, err = run(capsys, "solve", "--network", network_file, "--area-budget", "0.001", "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["status"] == "infeasible" and doc["binding"] == ["area"] and doc["totals"] is None
    assert "infeasible: area" in err and "Traceback" not in err
    code, out, err = run(capsys, "solve", "--network", network_file, "--latency-cap", "1e-9")
    assert code == 1
    assert "status infeasible" in out and "binding: cap[latency_s]" in out
    assert err.count("\n") == 1


def test_solve_user_errors_are_one_line_exit_2(capsys, network_file):
    for argv, message in ((["--solver", "no-such-solver"], "unknown solver"),
                          (["--objective", "speed"], "--objective"),
                          (["--objective", "power"], "needs --latency-cap"),
                          (["--area-budget", "-1"], "--area-budget"),
                          (["--max-iter", "many"], "--max-iter"),
                          (["--arch-template", "no-such-arch"], "no-such-arch")):
        code, out, err = run(capsys, "solve", "--network", network_file, *argv)
        assert code == 2, argv
        assert out == "" and err.count("\n") == 1 and message in err, (argv, err)
        assert err.startswith("codesign: error: ")


def test_solve_with_a_template_file_of_fixed_hardware(capsys, network_file, tmp_path):
    template = tmp_path / "fixed.yaml"
    template.write_text(yaml.safe_dump({"arch": "simple", "mesh_x": [8, 8], "mesh_y": [4, 4],
                                        "sizes": {"GlobalBuffer": [4096, 4096], "RegisterFile": [32, 32]}}))
    code, out, err = run(capsys, "solve", "--network", network_file, "--arch-template", str(template),
                         "--objective", "energy", "--json", "--max-iter", "500")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["template"] == "fixed"
    assert doc["rounded_hardware"] == {"mesh_x": 8, "mesh_y": 4, "GlobalBuffer": 4096, "RegisterFile": 32}
    assert doc["objective"] == pytest.approx(doc["totals"]["energy_pJ"], rel=1e-9)
