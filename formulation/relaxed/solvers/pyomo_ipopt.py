"""Backend ``pyomo-ipopt``: IPOPT through Pyomo's cyipopt interface, on the grey-box Pyomo model.

The model is :func:`formulation.relaxed.pyomo_model.build_pyomo_model` in ``"greybox"`` mode: linear rows
and totals as Pyomo expressions, each layer's costs as a PyNumero grey box fed by the NumPy
sensitivities. The grey boxes give first derivatives only, so IPOPT runs with a limited-memory
(L-BFGS) Hessian. Pyomo, PyNumero and cyipopt are imported on first use.
"""

from __future__ import annotations

import time

import numpy as np

from formulation.relaxed.solvers.base import Backend, SolveResult, SolveStatus, register

NAME = "pyomo-ipopt"
VIOLATION_TOL = 1e-5  # largest constraint violation accepted at a reported optimum (log units)


def unavailable_reason() -> str | None:
    """Why the backend cannot run here, or None when it can."""
    try:
        import cyipopt  # noqa: F401
    except ImportError as exc:
        return f"cyipopt is not importable ({exc})"
    try:
        from pyomo.contrib.pynumero.asl import AmplInterface
    except ImportError as exc:
        return f"Pyomo's pynumero is not importable ({exc})"
    if not AmplInterface.available():
        return "Pyomo's pynumero ASL library is not built (make install builds it)"
    return None


def available() -> bool:
    return unavailable_reason() is None


def _status(termination) -> SolveStatus:
    from pyomo.opt import TerminationCondition as TC

    if termination in (TC.optimal, TC.locallyOptimal, TC.globallyOptimal, TC.feasible):
        return SolveStatus.OPTIMAL  # "feasible" is IPOPT's "solved to acceptable level"
    if termination in (TC.maxIterations, TC.maxTimeLimit, TC.maxEvaluations):
        return SolveStatus.ITERATION_LIMIT
    if termination in (TC.infeasible, TC.infeasibleOrUnbounded):
        return SolveStatus.INFEASIBLE
    return SolveStatus.ERROR


def solve(problem, x0: np.ndarray | None = None, max_iter: int = 3000, time_limit_s: float | None = None,
          tol: float = 1e-6, print_level: int = 0, options: dict | None = None) -> SolveResult:
    """Solve ``problem`` from ``x0`` (default: its initial point); ``options`` go to IPOPT as they are.

    OPTIMAL needs IPOPT's success (or acceptable-level) exit and a point that violates no
    constraint of ``problem`` by more than 1e-5; otherwise the result is ERROR with the violated
    rows in ``binding``. An iteration or CPU-time limit gives ITERATION_LIMIT with the last point
    (``extra["feasible"]`` says whether it satisfies the constraints).
    """
    start = time.perf_counter()
    reason = unavailable_reason()
    if reason is not None:
        return SolveResult(SolveStatus.UNAVAILABLE, NAME, None, None, 0, 0.0, reason)
    import pyomo.environ as pyo

    from formulation.relaxed.pyomo_model import built_model, solution_vector

    model, build_s = built_model(problem, "greybox", x0)
    extra = {"build_s": build_s}
    ipopt_options = {"max_iter": int(max_iter), "tol": float(tol), "hessian_approximation": "limited-memory",
                     "print_level": int(print_level), "sb": "yes"}
    if time_limit_s is not None:
        ipopt_options["max_cpu_time"] = float(time_limit_s)
    ipopt_options.update(options or {})
    iterations = [0]

    def count(*args):  # Pyomo's 12-argument callback: (nlp, alg_mod, iter_count, ...)
        iterations[0] = int(args[2])
        return True

    solver = pyo.SolverFactory("cyipopt", options=ipopt_options)
    try:
        results = solver.solve(model, intermediate_callback=count)
    except Exception as exc:  # cyipopt raises on evaluation failures it cannot recover from
        return SolveResult(SolveStatus.ERROR, NAME, None, None, iterations[0], time.perf_counter() - start,
                           f"IPOPT failed: {exc!r}", extra=extra)
    termination = results.solver.termination_condition
    extra["termination_condition"] = str(termination)
    status = _status(termination)
    message = results.solver.message
    message = (message.decode() if isinstance(message, bytes) else str(message)).strip()
    x = solution_vector(model, problem)
    if not np.all(np.isfinite(x)):
        return SolveResult(SolveStatus.ERROR, NAME, None, None, iterations[0], time.perf_counter() - start,
                           f"IPOPT returned no finite point: {message}", extra=extra)
    with np.errstate(all="ignore"):
        objective = float(problem.objective(x))
        violated = problem.violations(x)
    names = tuple(name for name, _ in violated)
    worst = f"{violated[0][0]} by {violated[0][1]:.3g}" if violated else ""
    if status is SolveStatus.OPTIMAL and violated and violated[0][1] > VIOLATION_TOL:
        status = SolveStatus.ERROR
        message = f"IPOPT reported success but {len(violated)} constraint(s) are violated (worst {worst})"
    elif status is SolveStatus.ITERATION_LIMIT:
        extra["feasible"] = not violated or violated[0][1] <= VIOLATION_TOL
        names = ()
    elif status is SolveStatus.INFEASIBLE and violated:
        message = f"{message}; most violated: {worst}"
    elif status is SolveStatus.OPTIMAL:
        names = ()
    return SolveResult(status, NAME, objective, x, iterations[0], time.perf_counter() - start, message,
                       names, extra)


register(Backend(NAME, "IPOPT via Pyomo's cyipopt interface on the grey-box model", solve, available))
