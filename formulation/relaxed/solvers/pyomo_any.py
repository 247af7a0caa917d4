"""Backend ``pyomo:NAME``: any solver Pyomo's ``SolverFactory`` finds, on the algebraic Pyomo model.

The model is :func:`~formulation.relaxed.pyomo_model.build_pyomo_model` in ``"algebraic"`` mode
(its hooks applied), started at ``x0``. For the IPOPT family (``ipopt``, ``cyipopt``) the
iteration limit, tolerance and CPU-time limit are passed as IPOPT options; other solvers get only
``options`` (their own names), so they declare no time limit. Pyomo's termination condition maps
to the shared outcomes (:class:`~formulation.relaxed.solvers.base.Outcome`): optimal, locally or
globally optimal and IPOPT's "acceptable" (``feasible``) are a success; iteration, time and
evaluation limits a limit; infeasible an infeasibility verdict; anything else an error.
"""

from __future__ import annotations

import logging

from formulation.relaxed.solvers.base import Backend, Capabilities, Outcome, RawOutcome

IPOPT_FAMILY = ("ipopt", "cyipopt")
DEFAULT_MAX_ITER = 3000


def pyomo_solver_available(solver: str) -> bool:
    """Whether Pyomo's SolverFactory has ``solver`` and finds it here (its warnings silenced)."""
    try:
        import pyomo.environ as pyo
    except ImportError:
        return False
    log = logging.getLogger("pyomo")
    level = log.level
    log.setLevel(logging.ERROR + 10)
    try:
        return bool(pyo.SolverFactory(solver).available(exception_flag=False))
    except Exception:
        return False
    finally:
        log.setLevel(level)


def outcome_of(termination) -> Outcome:
    from pyomo.opt import TerminationCondition as TC

    if termination in (TC.optimal, TC.locallyOptimal, TC.globallyOptimal, TC.feasible):
        return Outcome.SUCCESS  # "feasible" is IPOPT's "solved to acceptable level"
    if termination in (TC.maxIterations, TC.maxTimeLimit, TC.maxEvaluations):
        return Outcome.LIMIT
    if termination in (TC.infeasible, TC.infeasibleOrUnbounded):
        return Outcome.INFEASIBLE
    return Outcome.ERROR


class PyomoSolverBackend(Backend):
    """``SolverFactory(solver)`` on the Pyomo model in ``mode`` (module docstring)."""

    mode = "algebraic"

    def __init__(self, solver: str, name: str | None = None):
        self.solver = solver
        self.name = name or f"pyomo:{solver}"
        self.description = f"Pyomo's SolverFactory({solver!r}) on the {self.mode} model"
        self.capabilities = Capabilities(time_limit=solver in IPOPT_FAMILY)

    def unavailable_reason(self) -> str | None:
        if not pyomo_solver_available(self.solver):
            return f"Pyomo's SolverFactory({self.solver!r}) is not available here"
        return None

    def solver_options(self, max_iter, time_limit_s, tol, options) -> dict:
        if self.solver not in IPOPT_FAMILY:
            return dict(options)
        out = {"max_iter": int(max_iter or DEFAULT_MAX_ITER), "tol": float(tol), "print_level": 0, "sb": "yes"}
        if time_limit_s is not None:
            out["max_cpu_time"] = float(time_limit_s)
        return {**out, **options}

    def run(self, problem, x0, max_iter, time_limit_s, tol, multipliers, options) -> RawOutcome:
        import pyomo.environ as pyo

        from formulation.relaxed.pyomo_model import built_model, solution_vector

        model, build_s = built_model(problem, self.mode, x0)
        solver = pyo.SolverFactory(self.solver, options=self.solver_options(max_iter, time_limit_s, tol, options))
        iterations = [0]
        kwargs = {}
        if self.solver == "cyipopt":
            def count(*args):  # Pyomo's 12-argument callback: (nlp, alg_mod, iter_count, ...)
                iterations[0] = int(args[2])
                return True

            kwargs["intermediate_callback"] = count
        else:
            kwargs["load_solutions"] = False
        results = solver.solve(model, **kwargs)
        if "load_solutions" in kwargs and len(results.solution) > 0:
            model.solutions.load_from(results)
        termination = results.solver.termination_condition
        message = results.solver.message
        message = (message.decode() if isinstance(message, bytes) else str(message or termination)).strip()
        return RawOutcome(outcome_of(termination), solution_vector(model, problem), iterations[0],
                          f"{self.solver}: {message}",
                          {"build_s": build_s, "termination_condition": str(termination)})
