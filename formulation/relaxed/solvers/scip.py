"""Backend ``scip``: SCIP through Pyomo's ``scip_direct`` interface, on the algebraic Pyomo model.

SCIP is a global (spatial branch-and-bound) solver and the relaxation is a nonconvex NLP, so
SCIP reports two numbers: the best point it found (an incumbent, usually from its local NLP
heuristics within the first second on small problems) and a lower bound on the objective. The
bound stays weak on this formulation: the energy and bandwidth terms are differences of
exponentials whose interval bounds reach zero, so the logs of them are only bounded below by
SCIP's ``1e-9`` floor. Even on a two-layer network the bound stays near -39 (ln E + ln T with
both logs at that floor) against an optimum of -2.5 after 30 s, so a solve ends at its time limit
(status ``iteration_limit``) with the incumbent and the gap in ``extra``; the incumbent matches
IPOPT's optimum on the networks tried (two layers: at 0.1 s; ResNet-18: at about 10 s). A solve always has a time limit (60 s unless given). Pyomo and PySCIPOpt are imported
on first use.
"""

from __future__ import annotations

import math

from formulation.relaxed.solvers.base import Backend, Capabilities, Outcome, RawOutcome, register

DEFAULT_TIME_LIMIT_S = 60.0


def _scip_with_start():
    """Pyomo's ``scip_direct`` solver whose start-solution hook hands SCIP the whole current point.

    Pyomo only passes integer variables (``warmstart_discrete_vars``). Here every variable gets its
    value, and scip_direct's objective variable (SCIP takes a nonlinear objective as ``min t``,
    ``t >= f(x)``) gets ``f(x)``, so SCIP receives a complete solution to check. (A partial one
    sends SCIP into its completion heuristic, which spent the whole time limit on ResNet-18.)
    """
    import pyomo.environ as pyo
    from pyomo.contrib.solver.solvers.scip.scip_direct import ScipDirect

    class ScipDirectWithStart(ScipDirect):
        def _mipstart(self):
            scip = self._solver_model
            solution = scip.createSol()
            for pyomo_var, scip_var in self._pyomo_var_to_solver_var_map.items():
                if pyomo_var.value is not None:
                    scip.setSolVal(solution, scip_var, float(pyomo_var.value))
            if self._objective is not None:
                scip.setSolVal(solution, self._obj_var, float(pyo.value(self._objective.expr)))
            scip.addSol(solution, free=True)

    return ScipDirectWithStart()


def _outcome(termination) -> Outcome:
    from pyomo.contrib.solver.common.results import TerminationCondition as TC

    if termination is TC.convergenceCriteriaSatisfied:
        return Outcome.SUCCESS
    if termination in (TC.maxTimeLimit, TC.iterationLimit, TC.interrupted, TC.objectiveLimit):
        return Outcome.LIMIT
    if termination in (TC.provenInfeasible, TC.locallyInfeasible, TC.infeasibleOrUnbounded):
        return Outcome.INFEASIBLE
    return Outcome.LIMIT


class ScipBackend(Backend):
    name = "scip"
    description = "SCIP via Pyomo's scip_direct on the algebraic model"
    capabilities = Capabilities(lower_bound=True)

    def unavailable_reason(self) -> str | None:
        try:
            import pyscipopt  # noqa: F401
        except ImportError as exc:
            return f"pyscipopt is not importable ({exc})"
        return None

    def run(self, problem, x0, max_iter, time_limit_s, tol, multipliers, options, rel_gap: float = 1e-4) -> RawOutcome:
        """Solve globally, up to ``time_limit_s`` (None: the 60 s default) and a relative gap of 1e-4.

        ``x0`` is given to SCIP as a complete starting solution. ``max_iter`` caps branch-and-bound
        nodes when given; ``tol`` is not used (SCIP keeps its own feasibility tolerance, 1e-6).
        ``options`` are SCIP parameters (``{"limits/nodes": 100}``); SCIP runs silent
        (``display/verblevel`` 0, see below) unless they say otherwise. ``extra`` holds SCIP's
        lower bound and the gap; the iterations are the nodes.
        """
        from pyomo.contrib.solver.common.results import SolutionStatus

        from formulation.relaxed.pyomo_model import built_model, solution_vector

        model, build_s = built_model(problem, "algebraic", x0)
        solver = _scip_with_start()
        # Quiet by default: scip_direct captures SCIP's output through a pipe while pyscipopt's optimize()
        # holds the GIL, so once SCIP writes more than a pipe buffer (64 KiB; one warning that prints a
        # layer's expression is enough on ResNet-18) it blocks forever, time limit or not.
        scip_options = {"display/verblevel": 0, **options}
        if max_iter is not None:
            scip_options.setdefault("limits/nodes", int(max_iter))
        results = solver.solve(model, time_limit=float(time_limit_s or DEFAULT_TIME_LIMIT_S), rel_gap=float(rel_gap),
                               load_solutions=False, raise_exception_on_nonoptimal_result=False,
                               warmstart_discrete_vars=True, solver_options=scip_options)
        bound, incumbent = results.objective_bound, results.incumbent_objective
        gap = (abs(incumbent - bound) / max(abs(incumbent), 1e-10)
               if incumbent is not None and bound is not None and math.isfinite(bound) else math.inf)
        try:
            nodes = int(results.extra_info["NNodes"])
        except (KeyError, TypeError, ValueError):
            nodes = 0
        extra = {"build_s": build_s, "termination_condition": results.termination_condition.name,
                 "objective_bound": bound, "incumbent_objective": incumbent, "gap": gap}
        message = (f"SCIP {results.termination_condition.name}: incumbent {incumbent}, lower bound {bound}, "
                   f"gap {gap:.3g} after {nodes} nodes")
        outcome = _outcome(results.termination_condition)
        if results.solution_status is SolutionStatus.noSolution:
            if outcome is not Outcome.INFEASIBLE:
                outcome, message = Outcome.ERROR, f"no feasible point found within the limits ({message})"
            return RawOutcome(outcome, None, nodes, message, extra)
        results.solution_loader.load_vars()
        return RawOutcome(outcome, solution_vector(model, problem), nodes, message, extra)


register(ScipBackend())
