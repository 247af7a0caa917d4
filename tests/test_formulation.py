"""One formulation, rendered twice: the Pyomo model against the NumPy callbacks (values and
derivatives), the named blocks, user model hooks in every backend, and the backends' shared statuses.

A tiny network (a 3x3 convolution and a fully-connected layer run twice) on the ``simple``
template keeps every solve to a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pyo = pytest.importorskip("pyomo.environ")

from pyomo.core.expr.calculus.derivatives import Modes, differentiate  # noqa: E402

from formulation.axes import DIMS, Dim  # noqa: E402
from formulation.goals import Caps  # noqa: E402
from formulation.relaxed.hooks import load_hook  # noqa: E402
from formulation.relaxed.problem import RelaxedProblem  # noqa: E402
from formulation.relaxed.pyomo_model import build_pyomo_model, load_point, relaxed_constraints, relaxed_variables  # noqa: E402
from formulation.relaxed.solvers import SolveStatus, get_backend  # noqa: E402
from formulation.relaxed.solvers.base import minimum_area_mm2  # noqa: E402
from formulation.specs.catalog import load_arch  # noqa: E402
from formulation.specs.template import default_template  # noqa: E402
from formulation.specs.types import Layer, Network, NetworkLayer, SpecError  # noqa: E402

CAPS = Caps(latency_s=1.0, energy_pJ=1e12, power_mW=1e6)  # every cap row exists; none binds
OBJECTIVE_RTOL = 1e-3


def tiny_problem(objective="edp", caps=Caps(), area_budget_mm2=50.0, hooks=()) -> RelaxedProblem:
    layers = (NetworkLayer(Layer("conv", N=1, C=8, K=16, P=6, Q=6, R=3, S=3)),
              NetworkLayer(Layer("fc", N=1, C=32, K=10, P=1, Q=1), count=2))
    return RelaxedProblem(Network("tiny", layers), default_template(load_arch("simple")), objective,
                          area_budget_mm2=area_budget_mm2, caps=caps, model_hooks=hooks)


def random_point(problem: RelaxedProblem, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return problem.lower + (problem.upper - problem.lower) * rng.uniform(0.1, 0.9, problem.n)


def ready(name: str):
    backend = get_backend(name)
    reason = backend.unavailable_reason()
    if reason is not None:
        pytest.skip(f"backend {name}: {reason}")
    return backend


# ---- the two renderings ---------------------------------------------------------------------------
@pytest.mark.parametrize("objective", ["edp", "power"])
def test_pyomo_model_and_callbacks_have_the_same_values_and_derivatives(objective):
    """Every row and the objective, and their gradients, agree at random points (Pyomo differentiates
    its own expressions; the callbacks replay the traced tape)."""
    problem = tiny_problem(objective, CAPS, area_budget_mm2=0.5)
    model = build_pyomo_model(problem, "algebraic")
    variables = relaxed_variables(model, problem)
    rows = relaxed_constraints(model, problem)
    for seed in range(3):
        x = random_point(problem, seed)
        load_point(model, problem, x)
        jac = problem.jacobian(x)
        g = problem.constraints(x)
        for j, (name, con) in enumerate(rows):
            bound = con.upper if con.upper is not None else con.lower
            assert pyo.value(con.body) - pyo.value(bound) == pytest.approx(g[j] - (problem.cu[j] if math.isfinite(
                problem.cu[j]) else problem.cl[j]), rel=1e-11, abs=1e-11), name
            grad = differentiate(con.body, wrt_list=variables, mode=Modes.reverse_numeric)
            np.testing.assert_allclose(grad, jac[j], rtol=1e-9, atol=1e-12, err_msg=name)
        assert pyo.value(model.objective) == pytest.approx(problem.objective(x), rel=1e-12)
        grad = differentiate(model.objective.expr, wrt_list=variables, mode=Modes.reverse_numeric)
        np.testing.assert_allclose(grad, problem.gradient(x), rtol=1e-9, atol=1e-12)


def test_named_blocks_point_at_the_named_variables_and_rows():
    problem = tiny_problem(caps=CAPS, area_budget_mm2=0.5)
    v, r = problem.variables, problem.rows
    names, rows = problem.names, problem.constraint_names
    assert names[v.mesh_x] == "mesh_x" and names[v.size["GlobalBuffer"]] == "size[GlobalBuffer]"
    assert names[v.xt[1, 2, Dim.K]] == "xt[fc,RegisterFile,K]" and names[v.lc[0]] == "lc[conv]"
    assert rows[r.product[0, Dim.C]] == "product[conv,C]" and rows[r.mesh_y[1]] == "mesh_y[fc]"
    assert rows[r.capacity[1, 1]] == "capacity[fc,GlobalBuffer]" and rows[r.area] == "area"
    assert rows[r.cap["power_mW"]] == "cap[power_mW]"
    # every variable and every row belongs to exactly one block entry
    columns = np.concatenate([[v.mesh_x, v.mesh_y], list(v.size.values()), v.xt.ravel(), v.xs.ravel(), v.lc])
    assert sorted(columns.tolist()) == list(range(problem.n))
    blocks = np.concatenate([r.product.ravel(), r.mesh_x, r.mesh_y, r.capacity[r.capacity >= 0], r.compute,
                             r.bandwidth.ravel(), [r.area], list(r.cap.values())])
    assert sorted(blocks.tolist()) == list(range(problem.m))
    for i in range(2):
        assert all(r.layer_rows(i)[0] <= r.product[i, d] <= r.layer_rows(i)[-1] for d in DIMS)


# ---- model hooks --------------------------------------------------------------------------------
def square_mesh(model, problem):
    """The README's example: a square PE array."""
    model.square_mesh = pyo.Constraint(expr=model.mesh_x == model.mesh_y)


def small_buffers(model, problem):
    """Halve the global buffer's log range and bound the two buffers' log sizes together."""
    gb, rf = model.size["GlobalBuffer"], model.size["RegisterFile"]
    gb.setub((gb.lb + gb.ub) / 2)
    model.few_words = pyo.Constraint(expr=gb + rf <= gb.lb + rf.ub)
    model.many_pes = pyo.Constraint(expr=pyo.exp(model.mesh_x) * pyo.exp(model.mesh_y) >= 4 + 0 * model.lc["fc"])


def test_a_hooked_constraint_binds_in_every_backend():
    free = ready("cyipopt").solve(tiny_problem(area_budget_mm2=0.5))
    assert abs(free.x[0] - free.x[1]) > 0.1  # without the hook the optimal mesh is not square
    results = {}
    for name in ("cyipopt", "pyomo-ipopt", "pyomo:cyipopt"):
        problem = tiny_problem(area_budget_mm2=0.5, hooks=(square_mesh,))
        result = ready(name).solve(problem)
        assert result.status is SolveStatus.OPTIMAL, (name, result.message)
        v = problem.variables
        assert result.x[v.mesh_x] == pytest.approx(result.x[v.mesh_y], abs=1e-6), name
        assert problem.constraint_names[-1] == "square_mesh"
        results[name] = result.objective
    assert min(results.values()) > free.objective - 1e-9
    assert max(results.values()) - min(results.values()) <= OBJECTIVE_RTOL * abs(results["cyipopt"])


def test_hooked_bounds_and_rows_reach_the_callbacks():
    problem = tiny_problem(area_budget_mm2=0.5, hooks=(small_buffers,))
    v = problem.variables
    gb, rf = v.size["GlobalBuffer"], v.size["RegisterFile"]
    assert problem.upper[gb] == pytest.approx((v.lower[gb] + v.upper[gb]) / 2)
    assert problem.constraint_names[-2:] == ["few_words", "many_pes"]  # a linear and a nonlinear row
    x = random_point(problem, 4)
    step = 1e-6
    rows, cols = problem.jacobian_structure()
    for row in (problem.m - 2, problem.m - 1):
        jac = problem.jacobian(x)[row]
        assert len(cols[rows == row]) == (2 if row == problem.m - 2 else 3)
        for j in cols[rows == row]:
            e = np.zeros(problem.n)
            e[j] = step
            fd = (problem.constraints(x + e)[row] - problem.constraints(x - e)[row]) / (2 * step)
            assert jac[j] == pytest.approx(fd, rel=1e-6, abs=1e-8)
    result = ready("cyipopt").solve(problem)
    assert result.status is SolveStatus.OPTIMAL
    assert result.x[gb] <= problem.upper[gb] + 1e-9
    assert result.x[gb] + result.x[rf] <= v.lower[gb] + v.upper[rf] + 1e-6


def drop_area(model, problem):
    model.area.deactivate()


@pytest.mark.parametrize("spec, message", [
    ("no-colon", "FILE.py:FUNCTION"),
    ("/no/such/file.py:f", "no file"),
    ("tests.test_formulation:no_such_function", "no function"),
])
def test_bad_hooks_are_one_line_errors(spec, message):
    with pytest.raises(SpecError, match=message):
        load_hook(spec)


def test_a_hook_may_not_remove_the_formulation_rows():
    with pytest.raises(SpecError, match="deactivated"):
        tiny_problem(area_budget_mm2=0.5, hooks=("tests.test_formulation:drop_area",)).m


# ---- the backends report alike --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cyipopt", "pyomo-ipopt", "scip", "pyomo:cyipopt"])
def test_every_backend_reports_an_impossible_area_budget_alike(name):
    backend = ready(name)
    smallest = minimum_area_mm2(tiny_problem())
    result = backend.solve(tiny_problem(area_budget_mm2=0.5 * smallest))
    assert result.status is SolveStatus.INFEASIBLE
    assert result.binding == ("area",) and result.x is None
    assert result.extra["detected"] == "before solving" and "cpu_s" in result.extra


@pytest.mark.parametrize("name", ["cyipopt", "pyomo-ipopt"])
def test_ipopt_backends_report_an_unreachable_energy_cap_alike(name):
    problem = tiny_problem("energy")
    minimum = problem.totals(ready("cyipopt").solve(problem).x)["energy_pJ"].value
    result = ready(name).solve(problem.with_objective("latency", Caps(energy_pJ=0.1 * minimum)), max_iter=500)
    assert result.status is SolveStatus.INFEASIBLE
    assert result.binding[0] == "cap[energy_pJ]"


def test_any_pyomo_solver_by_name_reaches_the_cyipopt_optimum():
    problem = tiny_problem()
    ours = ready("cyipopt").solve(problem)
    theirs = ready("pyomo:cyipopt").solve(problem)
    assert theirs.solver == "pyomo:cyipopt" and theirs.status is SolveStatus.OPTIMAL
    assert abs(theirs.objective - ours.objective) <= OBJECTIVE_RTOL * max(1.0, abs(ours.objective))
    with pytest.raises(SpecError, match="unknown solver"):
        get_backend("no-such-solver-anywhere")


def test_the_readme_hook_example_squares_the_mesh(tmp_path):
    """The hook shown in README's "Architecture" section, loaded as ``--model-hook`` loads it."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("# my_hook.py\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my_hook.py").write_text(block)
    problem = tiny_problem(area_budget_mm2=0.5, hooks=(f"{tmp_path / 'my_hook.py'}:square_mesh",))
    result = ready("cyipopt").solve(problem)
    assert result.status is SolveStatus.OPTIMAL
    assert result.x[problem.variables.mesh_x] == pytest.approx(result.x[problem.variables.mesh_y], abs=1e-6)
