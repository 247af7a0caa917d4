"""The relaxation's callbacks (against finite differences and the direct path) and the cyipopt backend.

Small problems keep every solve well under a second: a two-layer network (a 3x3 convolution and
a strided 1x1 layer run twice) on the ``simple`` template, and for the lower-bound check a tiny
layer on a template whose hardware is a single point.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from formulation.axes import Dim
from formulation.specs.catalog import load_arch
from formulation.goals import Caps, Objective
from formulation.relaxed.problem import RelaxedProblem
from formulation.relaxed.reference import reference_objective, reference_rows, reference_totals
from formulation.relaxed.solvers import SolveStatus, backend_names, get_backend
from formulation.relaxed.solvers.cyipopt_direct import certain_infeasibility, compute_bound_s, minimum_area_mm2
from formulation.specs.types import Layer, Network, NetworkLayer
from formulation.relaxed.sweep import tight_cycles
from formulation.specs.template import default_template, template_from_dict

pytest.importorskip("cyipopt")

FD_STEP = 1e-6
CAPS = Caps(latency_s=1.0, energy_pJ=1e12, power_mW=1e6)  # every cap row exists; none binds


def two_layer_network() -> Network:
    return Network("two", (NetworkLayer(Layer("conv", N=1, C=16, K=32, P=14, Q=14, R=3, S=3)),
                           NetworkLayer(Layer("pw", N=1, C=32, K=64, P=7, Q=7, Wstride=2, Hstride=2), count=2)))


def two_layer_problem(objective="edp", caps=Caps(), area_budget_mm2=0.5) -> RelaxedProblem:
    return RelaxedProblem(two_layer_network(), default_template(load_arch("simple")), objective,
                          area_budget_mm2=area_budget_mm2, caps=caps)


def interior_point(problem: RelaxedProblem, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return problem.lower + (problem.upper - problem.lower) * rng.uniform(0.2, 0.8, problem.n)


def central_difference(f, x: np.ndarray, columns) -> np.ndarray:
    """Central differences of ``f`` (scalar or vector valued) along the given columns."""
    out = []
    for j in columns:
        e = np.zeros_like(x)
        e[j] = FD_STEP
        out.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * FD_STEP))
    return np.array(out).T


def free_columns(problem: RelaxedProblem) -> np.ndarray:
    return np.flatnonzero(problem.upper > problem.lower)


@pytest.fixture(scope="module")
def cyipopt():
    backend = get_backend("cyipopt")
    assert backend.available()
    return backend


@pytest.fixture(scope="module")
def solved(cyipopt):
    problem = two_layer_problem()
    return problem, cyipopt.solve(problem)


# ---- callbacks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("objective", list(Objective))
def test_objective_gradient_matches_finite_differences(objective):
    problem = two_layer_problem(objective, CAPS)
    x = interior_point(problem, 1)
    cols = free_columns(problem)
    fd = central_difference(problem.objective, x, cols)
    analytic = problem.gradient(x)
    assert np.allclose(analytic[cols], fd, rtol=1e-5, atol=1e-6), np.max(np.abs(analytic[cols] - fd))
    fixed = np.setdiff1d(np.arange(problem.n), cols)
    assert np.all(np.isfinite(analytic[fixed]))


@pytest.mark.parametrize("seed", [2, 3])
def test_every_jacobian_row_matches_finite_differences(seed):
    problem = two_layer_problem("edp", CAPS)
    x = interior_point(problem, seed)
    cols = free_columns(problem)
    fd = central_difference(problem.constraints, x, cols)  # [m, free]
    jac = problem.jacobian(x)
    assert jac.shape == (problem.m, problem.n)
    scale = 1 + np.abs(fd)
    worst = np.max(np.abs(jac[:, cols] - fd) / scale, axis=1)
    bad = [problem.constraint_names[j] for j in np.flatnonzero(worst > 1e-5)]
    assert not bad, bad
    # the cap and area rows are all present
    assert {"area", "cap[latency_s]", "cap[energy_pJ]", "cap[power_mW]"} <= set(problem.constraint_names)


def test_compiled_path_equals_the_direct_path():
    """The traced, layer-batched evaluation gives relaxed_costs' values and gradients (to rounding)."""
    problem = two_layer_problem("power", CAPS)
    x = interior_point(problem, 4)
    rows = reference_rows(problem, x)
    assert np.allclose(problem.constraints(x), [r.value for r in rows], rtol=1e-12, atol=1e-12)
    assert np.allclose(problem.jacobian(x), [r.grad for r in rows], rtol=1e-12, atol=1e-12)
    direct = reference_objective(problem, x)
    assert problem.objective(x) == pytest.approx(direct.value, rel=1e-12)
    assert np.allclose(problem.gradient(x), direct.grad, rtol=1e-12, atol=1e-14)
    fast, reference = problem.totals(x), reference_totals(problem, x)
    for key in reference:
        assert fast[key].value == pytest.approx(reference[key].value, rel=1e-12)
        assert np.allclose(fast[key].grad, reference[key].grad, rtol=1e-12, atol=0)
    assert problem.layer_energy_pJ(x) @ [e.count for e in problem.network.layers] == \
        pytest.approx(fast["energy_pJ"].value, rel=1e-12)


def test_sparse_structure_covers_every_nonzero():
    problem = two_layer_problem("edp", CAPS)
    rows, cols = problem.jacobian_structure()
    assert len(set(zip(rows.tolist(), cols.tolist()))) == len(rows)  # no duplicates
    allowed = np.zeros((problem.m, problem.n), dtype=bool)
    allowed[rows, cols] = True
    for seed in (5, 6):
        jac = np.array([r.grad for r in reference_rows(problem, interior_point(problem, seed))])
        assert not np.any(jac[~allowed]), "a nonzero outside the declared structure"
    assert len(rows) < 0.5 * problem.m * problem.n
    x = interior_point(problem, 7)
    assert np.array_equal(problem.jacobian_values(x), problem.jacobian(x)[rows, cols])


def test_with_caps_keeps_the_variables_and_shares_the_compiled_tapes():
    problem = two_layer_problem()
    x = interior_point(problem, 8)
    problem.constraints(x)
    capped = problem.with_caps(Caps(latency_s=1e-3))
    assert capped._compiled is problem._compiled
    assert capped.n == problem.n and capped.m == problem.m + 1
    assert np.allclose(capped.constraints(x)[:-1], problem.constraints(x))


# ---- the cyipopt backend --------------------------------------------------------------------------

def test_backend_is_registered():
    assert "cyipopt" in backend_names()
    assert get_backend("cyipopt").description


def test_direct_solve_is_optimal_and_feasible(solved):
    problem, result = solved
    assert result.status is SolveStatus.OPTIMAL, result.message
    assert result.solver == "cyipopt" and result.iterations > 0 and result.wall_s > 0
    assert problem.violations(result.x) == []
    assert np.all(result.x >= problem.lower - 1e-9) and np.all(result.x <= problem.upper + 1e-9)
    assert result.objective == pytest.approx(problem.objective(result.x))
    # the area budget binds at the EDP optimum of this small network
    assert problem.totals(result.x)["area_mm2"].value == pytest.approx(0.5, rel=1e-5)
    # better than the starting point
    assert result.objective < problem.objective(problem.initial_point())


def test_warm_start_from_the_optimum_converges_in_few_iterations(solved, cyipopt):
    problem, cold = solved
    primal = cyipopt.solve(problem, x0=cold.x)
    assert primal.status is SolveStatus.OPTIMAL
    assert primal.objective == pytest.approx(cold.objective, abs=1e-6)
    assert primal.iterations <= max(15, cold.iterations // 2), (primal.iterations, cold.iterations)
    dual = cyipopt.solve(problem, x0=cold.x, multipliers=cold.extra["multipliers"])
    assert dual.status is SolveStatus.OPTIMAL
    assert dual.iterations <= 3
    assert dual.objective == pytest.approx(cold.objective, abs=1e-6)


def test_area_budget_below_the_smallest_hardware_is_infeasible(cyipopt):
    smallest = minimum_area_mm2(two_layer_problem())
    problem = two_layer_problem(area_budget_mm2=0.5 * smallest)
    result = cyipopt.solve(problem)
    assert result.status is SolveStatus.INFEASIBLE
    assert "area" in result.binding
    assert result.iterations == 0 and result.x is None  # detected without running IPOPT
    # just above the smallest hardware it is feasible
    assert certain_infeasibility(two_layer_problem(area_budget_mm2=1.01 * smallest)) is None


def test_latency_cap_below_the_compute_bound_is_infeasible(cyipopt):
    problem = two_layer_problem()
    bound = compute_bound_s(problem)
    net = problem.network
    max_pes = problem.template.mesh_x_range[1] * problem.template.mesh_y_range[1]
    assert bound == pytest.approx(sum(e.count * e.layer.macs for e in net.layers) / max_pes / 1e9)
    result = cyipopt.solve(problem.with_caps(Caps(latency_s=0.5 * bound)))
    assert result.status is SolveStatus.INFEASIBLE
    assert result.binding == ("cap[latency_s]",)
    assert "compute bound" in result.message


def test_ipopt_reports_an_energy_cap_it_cannot_meet(cyipopt):
    problem = two_layer_problem("energy")
    minimum = problem.totals(cyipopt.solve(problem).x)["energy_pJ"].value
    result = cyipopt.solve(problem.with_objective("latency", Caps(energy_pJ=0.1 * minimum)))
    assert result.status is SolveStatus.INFEASIBLE
    assert result.binding[0] == "cap[energy_pJ]"


def test_iteration_limit_returns_a_point(cyipopt):
    problem = two_layer_problem()
    result = cyipopt.solve(problem, max_iter=3)
    assert result.status is SolveStatus.ITERATION_LIMIT
    assert result.ok and result.x is not None and result.x.shape == (problem.n,)
    assert result.iterations == 3
    assert math.isfinite(result.objective)
    assert result.extra["feasible"] == (problem.violations(result.x) == [])


def test_a_rejected_ipopt_option_is_an_error_result(cyipopt):
    result = cyipopt.solve(two_layer_problem(), options={"mu_strategy": "no-such-strategy"})
    assert result.status is SolveStatus.ERROR and "mu_strategy" in result.message
    assert result.extra["cpu_s"] >= 0


# ---- the relaxation bounds its own integer points ----------------------------------------------

TINY = Layer("tiny", N=1, C=4, K=4, P=4, Q=4)
SPATIAL_DIMS = (Dim.K, Dim.C, Dim.P, Dim.Q)  # the dimensions of size 4; N = R = S = 1
CHUNK = 256  # integer points evaluated per batch problem


def single_point_template():
    """2x2 PEs, a 64-word global buffer and 8-word register files: every range a single point."""
    return template_from_dict({"mesh_x": [2, 2], "mesh_y": [2, 2],
                               "sizes": {"GlobalBuffer": [64, 64], "RegisterFile": [8, 8]}},
                              load_arch("simple"), "tiny-2x2")


def integer_factorizations(problem: RelaxedProblem):
    """Every split of each dimension of size 4 into temporal factors per level and a spatial factor at
    the array fanout (exponents of 2), with the spatial factors fitting the 2x2 mesh."""
    splits = [e for e in itertools.product(range(3), repeat=problem.levels + 1) if sum(e) == 2]
    x_dims = (Dim.K, Dim.P)
    for combo in itertools.product(splits, repeat=len(SPATIAL_DIMS)):
        spatial = {d: 2 ** c[-1] for d, c in zip(SPATIAL_DIMS, combo)}
        if math.prod(spatial[d] for d in x_dims) > 2 or math.prod(
                spatial[d] for d in SPATIAL_DIMS if d not in x_dims) > 2:
            continue
        yield combo


def test_relaxed_optimum_is_a_lower_bound_on_its_integer_points(cyipopt):
    template = single_point_template()
    combos = list(integer_factorizations(RelaxedProblem(Network("one", (NetworkLayer(TINY),)), template)))
    assert len(combos) > 1000
    # Evaluate the integer points in batches: a network whose layers are copies of TINY, one per point.
    ok, ln_energy, ln_latency, points = [], [], [], []
    for first in range(0, len(combos), CHUNK):
        chunk = combos[first:first + CHUNK]
        copies = Network("copies", tuple(NetworkLayer(Layer(f"c{j}", N=1, C=4, K=4, P=4, Q=4))
                                         for j in range(len(chunk))))
        batch = RelaxedProblem(copies, template, "edp")
        v = batch.variables
        x = np.array(batch.lower, copy=True)  # the hardware is the single point of the template
        for j, combo in enumerate(chunk):
            x[v.xt[j]] = x[v.xs[j]] = 0.0
            for d, c in zip(SPATIAL_DIMS, combo):
                for level in range(batch.levels):
                    x[v.xt[j, level, d]] = c[level] * math.log(2)
                x[v.xs[j, batch.fanout_level, d]] = c[-1] * math.log(2)
        x = tight_cycles(batch, x)
        g = batch.constraints(x)
        feasible = (g <= batch.cu + 1e-9) & (g >= batch.cl - 1e-9)
        ok.append(feasible.reshape(len(chunk), -1).all(axis=1))
        ln_energy.append(np.log(batch.layer_energy_pJ(x)))
        ln_latency.append(x[v.lc] - math.log(template.base.clock_GHz * 1e9))
        points += [x[v.layer_columns(j)] for j in range(len(chunk))]
    ok, ln_energy, ln_latency = np.concatenate(ok), np.concatenate(ln_energy), np.concatenate(ln_latency)
    assert 100 < ok.sum() < len(combos)  # the buffers rule out some points but not all
    by_objective = {"energy": ln_energy, "latency": ln_latency, "edp": ln_energy + ln_latency}

    single = RelaxedProblem(Network("one", (NetworkLayer(TINY),)), template)
    for objective, values in by_objective.items():
        problem = single.with_objective(objective)
        # the batched values are the single-layer problem's objective at the same point
        j = int(np.flatnonzero(ok)[0])
        xj = np.array(problem.lower, copy=True)
        xj[problem.variables.layer_columns(0)] = points[j]
        assert problem.objective(xj) == pytest.approx(values[j], abs=1e-9)
        result = cyipopt.solve(problem)
        assert result.status is SolveStatus.OPTIMAL, result.message
        best = values[ok].min()
        assert result.objective <= best + 1e-7, (objective, result.objective, best)
