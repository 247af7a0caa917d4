"""IPOPT through ``cyipopt.Problem`` on the NumPy callbacks of a :class:`~formulation.relaxed.problem.RelaxedProblem`.

The fast path: no modelling layer, the problem's own objective/gradient/constraint callbacks, the
sparse Jacobian structure (:meth:`RelaxedProblem.jacobian_structure`, fixed for a problem) and a
limited-memory (L-BFGS) Hessian. Any object with the same callback API works (the weighted-sum
wrapper of :mod:`formulation.relaxed.sweep`, for example); without ``jacobian_structure`` the Jacobian is
passed dense.

Before IPOPT runs, three infeasibilities that are cheap and certain to detect are reported without
solving (:func:`certain_infeasibility`): an area budget below the smallest hardware of the
template, a latency cap below the network's compute bound at the largest PE mesh, and an energy cap
below the MAC energy alone (:func:`energy_bound_pJ`).

IPOPT's exit status maps to :class:`SolveStatus`: 0 (solved) and 1 (solved to an acceptable
level) are OPTIMAL, -1 (iteration limit), -4 (CPU time limit) and 5 (our intermediate callback's
stop at the wall-clock ``time_limit_s``, checked once per iteration) are ITERATION_LIMIT with the
best point seen, 2 (locally infeasible) is INFEASIBLE with the violated constraints (worst first) in
``binding``; anything else is ERROR. A point IPOPT calls optimal that still violates a constraint
by more than 1e-5 is reported as ERROR with the violations, never as OPTIMAL.
"""

from __future__ import annotations

import math
import time

import numpy as np

from formulation.relaxed.solvers.base import Backend, SolveResult, SolveStatus, register

NAME = "cyipopt"
VIOLATION_TOL = 1e-5        # largest constraint violation accepted at a reported optimum (log units)
FEASIBLE_TOL = 1e-6         # a point counts as feasible for "best point so far" below this violation
_OPTIMAL = {0: "solved", 1: "solved to an acceptable level"}
_LIMIT = {-1: "iteration limit", -4: "CPU time limit", 5: "wall-clock time limit"}  # 5: our intermediate stop


def available() -> bool:
    try:
        import cyipopt  # noqa: F401
    except ImportError:
        return False
    return True


def minimum_area_mm2(problem) -> float:
    """Area of the smallest hardware in the template's ranges (area grows with every hardware variable)."""
    return problem.area(np.array(problem.lower, dtype=float)).value


def compute_bound_s(problem) -> float:
    """Latency lower bound: ``sum_i n_i MACs_i / max PEs / f_clk`` (every MAC of the largest mesh busy)."""
    template = problem.template
    max_pes = template.mesh_x_range[1] * template.mesh_y_range[1]
    clock_hz = template.base.clock_GHz * 1e9
    return sum(entry.count * entry.layer.macs for entry in problem.network.layers) / max_pes / clock_hz


def energy_bound_pJ(problem) -> float:
    """Energy lower bound: ``sum_i n_i MACs_i e_MAC``.

    Argument: a layer's energy (exact model and relaxation alike, :mod:`formulation.relaxed.sensitivity`)
    is its MAC energy ``MACs e_MAC`` plus access counts times non-negative energies per access; the
    counts are non-negative (in the relaxation, exponentials of log variables), so every design of the
    network spends at least the MAC energy of all its layers. ``tests/test_hardening.py`` checks the
    bound against the relaxation at random points and against exact evaluations.
    """
    mac = problem.template.base.mac.energy_pJ
    return sum(entry.count * entry.layer.macs * mac for entry in problem.network.layers)


def certain_infeasibility(problem) -> tuple[str, str] | None:
    """``(constraint name, reason)`` when the problem is infeasible for a reason checked without solving."""
    budget = getattr(problem, "area_budget_mm2", None)
    if budget is not None:
        smallest = minimum_area_mm2(problem)
        if budget < smallest * (1 - 1e-9):
            t = problem.template
            return "area", (f"area budget {budget:.6g} mm^2 is below the smallest hardware of template {t.name} "
                            f"({t.mesh_x_range[0]}x{t.mesh_y_range[0]} PEs, smallest buffers): {smallest:.6g} mm^2")
    caps = getattr(problem, "caps", None)
    cap = None if caps is None else caps.latency_s
    if cap is not None:
        bound = compute_bound_s(problem)
        if cap < bound * (1 - 1e-9):
            t = problem.template
            return "cap[latency_s]", (f"latency cap {cap:.6g} s is below the compute bound {bound:.6g} s "
                                      f"({problem.network.name} on {t.mesh_x_range[1]}x{t.mesh_y_range[1]} PEs "
                                      f"at {t.base.clock_GHz:g} GHz)")
    energy_cap = None if caps is None else caps.energy_pJ
    if energy_cap is not None:
        bound = energy_bound_pJ(problem)
        if energy_cap < bound * (1 - 1e-9):
            return "cap[energy_pJ]", (f"energy cap {energy_cap:.6g} pJ is below the MAC energy alone {bound:.6g} pJ "
                                      f"({problem.network.name})")
    return None


class _Callbacks:
    """cyipopt's problem object: the problem's callbacks, plus the best feasible point evaluated so far."""

    def __init__(self, problem, sparse: bool, deadline: float = math.inf):
        self.problem = problem
        self.deadline = deadline  # time.perf_counter() after which the solve stops (IPOPT's CPU limit alone
        # lets a loaded machine run far past a wall-clock budget)
        self.sparse = sparse
        self.iterations = 0
        self.best_x: np.ndarray | None = None
        self.best_objective = math.inf
        if sparse:
            self.rows, self.cols = problem.jacobian_structure()

    def objective(self, x):
        with np.errstate(all="ignore"):
            return self.problem.objective(x)

    def gradient(self, x):
        with np.errstate(all="ignore"):
            return self.problem.gradient(x)

    def constraints(self, x):
        with np.errstate(all="ignore"):
            g = self.problem.constraints(x)
            violation = np.max(np.maximum(self.problem.cl - g, 0) + np.maximum(g - self.problem.cu, 0),
                               initial=0.0)
            if violation <= FEASIBLE_TOL:  # the callbacks cache the point: the objective is cheap here
                f = self.problem.objective(x)
                if f < self.best_objective:
                    self.best_objective, self.best_x = f, np.array(x, copy=True)
        return g

    def jacobianstructure(self):
        return self.rows, self.cols

    def jacobian(self, x):
        with np.errstate(all="ignore"):
            if self.sparse:
                return self.problem.jacobian_values(x)
            return self.problem.jacobian(x).ravel()

    def intermediate(self, alg_mod, iter_count, obj_value, inf_pr, inf_du, mu, d_norm, regularization_size,
                     alpha_du, alpha_pr, ls_trials):
        self.iterations = iter_count
        return time.perf_counter() <= self.deadline


def _result(status, problem, x, iterations, start, message, binding=(), extra=None) -> SolveResult:
    """``start``: (wall, CPU) clocks at the start; the CPU seconds go to ``extra["cpu_s"]``."""
    objective = None
    if x is not None:
        with np.errstate(all="ignore"):
            objective = float(problem.objective(x))
    return SolveResult(status=status, solver=NAME, objective=objective, x=x, iterations=iterations,
                       wall_s=time.perf_counter() - start[0], message=message, binding=tuple(binding),
                       extra={**(extra or {}), "cpu_s": time.process_time() - start[1]})


def _max_violation(problem, x) -> float:
    found = problem.violations(x)
    return found[0][1] if found else 0.0


def solve(problem, x0=None, max_iter: int = 3000, time_limit_s: float | None = None, tol: float = 1e-6,
          multipliers: dict | None = None, print_level: int = 0, options: dict | None = None) -> SolveResult:
    """Solve ``problem`` with IPOPT (see the module docstring for statuses).

    ``x0`` warm-starts the primal point (default ``problem.initial_point()``). ``multipliers``
    (``extra["multipliers"]`` of an earlier result on a problem of the same shape) also warm-starts
    the duals, with a small initial barrier parameter. ``options`` are passed to IPOPT as they are.
    """
    start = (time.perf_counter(), time.process_time())
    if not available():
        return _result(SolveStatus.UNAVAILABLE, problem, None, 0, start,
                       "cyipopt is not installed (pip install cyipopt; needs the Ipopt library)")
    import cyipopt

    certain = certain_infeasibility(problem)
    if certain is not None:
        name, reason = certain
        return _result(SolveStatus.INFEASIBLE, problem, None, 0, start, reason, (name,),
                       {"detected": "before solving"})
    x0 = problem.initial_point() if x0 is None else np.clip(np.asarray(x0, dtype=float), problem.lower, problem.upper)
    sparse = hasattr(problem, "jacobian_structure")
    callbacks = _Callbacks(problem, sparse, math.inf if time_limit_s is None else start[0] + float(time_limit_s))
    nlp = cyipopt.Problem(n=problem.n, m=problem.m, problem_obj=callbacks, lb=problem.lower, ub=problem.upper,
                          cl=problem.cl, cu=problem.cu)
    nlp.add_option("print_level", int(print_level))
    nlp.add_option("sb", "yes")  # no banner
    nlp.add_option("hessian_approximation", "limited-memory")
    nlp.add_option("max_iter", int(max_iter))
    nlp.add_option("tol", float(tol))
    if time_limit_s is not None:
        nlp.add_option("max_cpu_time", float(time_limit_s))
    warm = multipliers is not None and len(multipliers.get("mult_g", ())) == problem.m \
        and len(multipliers.get("mult_x_L", ())) == problem.n
    if warm:
        nlp.add_option("warm_start_init_point", "yes")
        nlp.add_option("mu_init", 1e-6)
        for key in ("warm_start_bound_push", "warm_start_bound_frac", "warm_start_slack_bound_push",
                    "warm_start_slack_bound_frac", "warm_start_mult_bound_push"):
            nlp.add_option(key, 1e-9)
    for key, value in (options or {}).items():
        try:
            nlp.add_option(key, value)
        except TypeError:
            nlp.close()
            return _result(SolveStatus.ERROR, problem, None, 0, start, f"IPOPT rejected option {key} = {value!r}")
    try:
        if warm:
            x, info = nlp.solve(x0, lagrange=np.asarray(multipliers["mult_g"], dtype=float),
                                zl=np.asarray(multipliers["mult_x_L"], dtype=float),
                                zu=np.asarray(multipliers["mult_x_U"], dtype=float))
        else:
            x, info = nlp.solve(x0)
    except Exception as exc:  # a callback failed, or IPOPT itself
        return _result(SolveStatus.ERROR, problem, None, callbacks.iterations, start, f"IPOPT failed: {exc!r}")
    finally:
        nlp.close()
    code = int(info["status"])
    msg = info["status_msg"]
    msg = (msg.decode() if isinstance(msg, bytes) else str(msg)).strip()
    extra = {"ipopt_status": code, "multipliers": {"mult_g": np.array(info["mult_g"]),
                                                   "mult_x_L": np.array(info["mult_x_L"]),
                                                   "mult_x_U": np.array(info["mult_x_U"])}}
    iterations = callbacks.iterations
    x = np.array(x, dtype=float)
    if code in _OPTIMAL:
        violated = problem.violations(x)
        if violated and violated[0][1] > VIOLATION_TOL:
            return _result(SolveStatus.ERROR, problem, x, iterations, start,
                           f"IPOPT reported {_OPTIMAL[code]} but {len(violated)} constraint(s) are violated "
                           f"(worst {violated[0][0]} by {violated[0][1]:.3g})",
                           [name for name, _ in violated], extra)
        return _result(SolveStatus.OPTIMAL, problem, x, iterations, start, f"IPOPT: {_OPTIMAL[code]}", (), extra)
    if code in _LIMIT:
        best = x
        if callbacks.best_x is not None and (_max_violation(problem, x) > FEASIBLE_TOL
                                             or callbacks.best_objective < problem.objective(x)):
            best = callbacks.best_x
        feasible = _max_violation(problem, best) <= FEASIBLE_TOL
        return _result(SolveStatus.ITERATION_LIMIT, problem, best, iterations, start,
                       f"IPOPT stopped at its {_LIMIT[code]} after {iterations} iterations; "
                       f"{'best feasible point' if feasible else 'last point (not feasible)'} returned",
                       (), {**extra, "feasible": feasible})
    violated = problem.violations(x)
    names = [name for name, _ in violated]
    if code == 2:
        worst = f"; most violated: {violated[0][0]} by {violated[0][1]:.3g}" if violated else ""
        return _result(SolveStatus.INFEASIBLE, problem, x, iterations, start,
                       f"IPOPT: problem may be locally infeasible{worst}", names, extra)
    return _result(SolveStatus.ERROR, problem, x, iterations, start, f"IPOPT status {code}: {msg}", names, extra)


register(Backend(NAME, "IPOPT via cyipopt.Problem on the NumPy callbacks", solve, available))
