"""Backend ``pyomo-ipopt``: IPOPT through Pyomo's cyipopt interface, on the grey-box Pyomo model.

The model is :func:`formulation.pyomo_model.build_pyomo_model` in ``"greybox"`` mode: linear rows
and totals as Pyomo expressions, each layer's costs as a PyNumero grey box fed by the NumPy
sensitivities. The grey boxes give first derivatives only, so IPOPT runs with a limited-memory
(L-BFGS) Hessian. Pyomo, PyNumero and cyipopt are imported on first use.
"""

from __future__ import annotations

import time

import numpy as np

from formulation.solvers.base import Backend, SolveResult, SolveStatus, register

NAME = "pyomo-ipopt"


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
    if termination in (TC.infeasible, TC.locallyInfeasible):
        return SolveStatus.INFEASIBLE
    return SolveStatus.ERROR


def solve(problem, x0: np.ndarray | None = None, max_iter: int = 3000, time_limit_s: float = 60.0,
          tol: float = 1e-8, print_level: int = 0, **options) -> SolveResult:
    """Solve ``problem`` from ``x0`` (default: its initial point); extra ``options`` go to IPOPT."""
    start = time.perf_counter()
    reason = unavailable_reason()
    if reason is not None:
        return SolveResult(SolveStatus.UNAVAILABLE, NAME, None, None, 0, 0.0, reason)
    import pyomo.environ as pyo

    from formulation.pyomo_model import build_pyomo_model, load_point, solution_vector

    build_start = time.perf_counter()
    model = build_pyomo_model(problem, "greybox")
    if x0 is not None:
        load_point(model, problem, x0)
    build_s = time.perf_counter() - build_start
    ipopt_options = {"max_iter": int(max_iter), "tol": float(tol), "max_cpu_time": float(time_limit_s),
                     "hessian_approximation": "limited-memory", "print_level": int(print_level), **options}
    iterations = [0]

    def count(*args):  # Pyomo's 12-argument callback: (nlp, alg_mod, iter_count, ...)
        iterations[0] = int(args[2])
        return True

    solver = pyo.SolverFactory("cyipopt", options=ipopt_options)
    try:
        results = solver.solve(model, intermediate_callback=count)
    except Exception as exc:  # cyipopt raises on evaluation failures it cannot recover from
        return SolveResult(SolveStatus.ERROR, NAME, None, None, iterations[0], time.perf_counter() - start,
                           f"{type(exc).__name__}: {exc}", extra={"build_s": build_s})
    termination = results.solver.termination_condition
    status = _status(termination)
    message = results.solver.message
    message = message.decode() if isinstance(message, bytes) else str(message)
    x = solution_vector(model, problem)
    objective = None
    binding: tuple[str, ...] = ()
    if np.all(np.isfinite(x)):
        try:
            objective = float(problem.objective(x))
        except (ValueError, FloatingPointError, OverflowError):
            objective = None
        if status is SolveStatus.INFEASIBLE:
            binding = tuple(name for name, _ in problem.violations(x)[:5])
    else:
        x = None
        if status is not SolveStatus.INFEASIBLE:
            status = SolveStatus.ERROR
    return SolveResult(status, NAME, objective, x, iterations[0], time.perf_counter() - start, message,
                       binding, extra={"termination_condition": str(termination), "build_s": build_s})


register(Backend(NAME, "IPOPT via Pyomo's cyipopt interface on the grey-box model", solve, available))
