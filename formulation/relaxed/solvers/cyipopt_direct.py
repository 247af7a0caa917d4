"""Backend ``cyipopt``: IPOPT through ``cyipopt.Problem`` on the NumPy callbacks of a
:class:`~formulation.relaxed.problem.RelaxedProblem`.

The fast path: no modelling layer, the problem's own objective/gradient/constraint callbacks, the
sparse Jacobian structure (:meth:`RelaxedProblem.jacobian_structure`, fixed for a problem) and a
limited-memory (L-BFGS) Hessian. Any object with the same callback API works (the weighted-sum
wrapper of :mod:`formulation.relaxed.sweep`, for example); without ``jacobian_structure`` the Jacobian is
passed dense. Takes the multipliers of an earlier solve as a warm start.

IPOPT's exit status 0 (solved) and 1 (solved to an acceptable level) are a success, -1 (iteration
limit), -4 (CPU time limit) and 5 (our intermediate callback's stop at the wall-clock ``time_limit_s``,
checked once per iteration: IPOPT's CPU limit alone lets a loaded machine run far past a wall-clock
budget) a limit (the best feasible point evaluated is kept), 2 (locally
infeasible) infeasible, anything else an error; :func:`~formulation.relaxed.solvers.base.classify`
makes the status of these.
"""

from __future__ import annotations

import math
import time

import numpy as np

from formulation.relaxed.solvers.base import (FEASIBLE_TOL, Backend, Capabilities, Outcome, RawOutcome,
                                              certain_infeasibility, compute_bound_s, minimum_area_mm2, register)

__all__ = ["CyipoptBackend", "certain_infeasibility", "compute_bound_s", "minimum_area_mm2"]

_OPTIMAL = {0: "solved", 1: "solved to an acceptable level"}
_LIMIT = {-1: "iteration limit", -4: "CPU time limit", 5: "wall-clock time limit"}  # 5: our intermediate stop
DEFAULT_MAX_ITER = 3000


class _Callbacks:
    """cyipopt's problem object: the problem's callbacks, plus the best feasible point evaluated so far."""

    def __init__(self, problem, sparse: bool):
        self.problem = problem
        self.sparse = sparse
        self.deadline = math.inf  # time.perf_counter() after which the solve stops (set from time_limit_s)
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


class CyipoptBackend(Backend):
    name = "cyipopt"
    description = "IPOPT via cyipopt.Problem on the NumPy callbacks"
    capabilities = Capabilities(warm_start_multipliers=True)

    def unavailable_reason(self) -> str | None:
        try:
            import cyipopt  # noqa: F401
        except ImportError:
            return "cyipopt is not installed (pip install cyipopt; needs the Ipopt library)"
        return None

    def run(self, problem, x0, max_iter, time_limit_s, tol, multipliers, options) -> RawOutcome:
        """IPOPT from ``x0``; with ``multipliers`` the duals are warm-started too, with a small initial barrier."""
        import cyipopt

        callbacks = _Callbacks(problem, hasattr(problem, "jacobian_structure"))
        if time_limit_s is not None:
            callbacks.deadline = time.perf_counter() + float(time_limit_s)
        nlp = cyipopt.Problem(n=problem.n, m=problem.m, problem_obj=callbacks, lb=problem.lower, ub=problem.upper,
                              cl=problem.cl, cu=problem.cu)
        settings = {"print_level": 0, "sb": "yes", "hessian_approximation": "limited-memory",
                    "max_iter": int(max_iter or DEFAULT_MAX_ITER), "tol": float(tol)}
        if time_limit_s is not None:
            settings["max_cpu_time"] = float(time_limit_s)
        warm = multipliers is not None and len(multipliers.get("mult_g", ())) == problem.m \
            and len(multipliers.get("mult_x_L", ())) == problem.n
        if warm:
            settings.update({"warm_start_init_point": "yes", "mu_init": 1e-6, "warm_start_bound_push": 1e-9,
                             "warm_start_bound_frac": 1e-9, "warm_start_slack_bound_push": 1e-9,
                             "warm_start_slack_bound_frac": 1e-9, "warm_start_mult_bound_push": 1e-9})
        try:
            for key, value in {**settings, **options}.items():
                try:
                    nlp.add_option(key, value)
                except TypeError:
                    return RawOutcome(Outcome.ERROR, None, 0, f"IPOPT rejected option {key} = {value!r}")
            duals = {}
            if warm:
                duals = {"lagrange": np.asarray(multipliers["mult_g"], dtype=float),
                         "zl": np.asarray(multipliers["mult_x_L"], dtype=float),
                         "zu": np.asarray(multipliers["mult_x_U"], dtype=float)}
            x, info = nlp.solve(x0, **duals)
        finally:
            nlp.close()
        code = int(info["status"])
        msg = info["status_msg"]
        msg = (msg.decode() if isinstance(msg, bytes) else str(msg)).strip()
        extra = {"ipopt_status": code, "multipliers": {key: np.array(info[key])
                                                       for key in ("mult_g", "mult_x_L", "mult_x_U")}}
        it = callbacks.iterations
        if code in _OPTIMAL:
            return RawOutcome(Outcome.SUCCESS, x, it, f"IPOPT: {_OPTIMAL[code]}", extra)
        if code in _LIMIT:
            return RawOutcome(Outcome.LIMIT, x, it, f"IPOPT stopped at its {_LIMIT[code]} after {it} iterations",
                              extra, callbacks.best_x)
        if code == 2:
            return RawOutcome(Outcome.INFEASIBLE, x, it, "IPOPT: problem may be locally infeasible", extra)
        return RawOutcome(Outcome.ERROR, x, it, f"IPOPT status {code}: {msg}", extra)


register(CyipoptBackend())
