"""Solver backends: one base class, one result type, one post-solve classification, a registry by name.

A backend subclasses :class:`Backend`, declares its :class:`Capabilities` and implements
:meth:`Backend.run`, which solves and returns a :class:`RawOutcome` (how the solver says it ended,
its last point, its best feasible point if it tracks one). :meth:`Backend.solve` does the rest
the same way for every backend, so the same problem gets the same status from each:

1. not installed: ``UNAVAILABLE`` with the reason (:meth:`Backend.unavailable_reason`);
2. infeasible for a reason checked without solving (:func:`certain_infeasibility`: an area budget
   below the template's smallest hardware, a latency cap below the compute bound at the largest
   mesh, an energy cap below the MAC energy alone, :func:`energy_bound_pJ`): ``INFEASIBLE`` with that row in ``binding``, before the solver runs;
3. :func:`classify` of the outcome: a point the solver calls optimal is ``OPTIMAL`` only if it
   violates no row by more than :data:`VIOLATION_TOL` (else ``ERROR`` naming the violated rows);
   at a limit ``ITERATION_LIMIT`` with the better of the last and the best feasible point
   (``extra["feasible"]`` says whether it is feasible); a solver's infeasibility verdict is
   ``INFEASIBLE`` with the violated rows (worst first) in ``binding``; anything else ``ERROR``.

``extra["cpu_s"]`` is the process CPU time of every solve. Backends register by name
(:func:`register`); :func:`get_backend` also accepts ``pyomo:NAME`` (or a bare ``NAME`` that is
not registered) for any solver Pyomo's ``SolverFactory`` knows and finds on this machine.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

VIOLATION_TOL = 1e-5        # largest constraint violation accepted at a reported optimum (log units)
FEASIBLE_TOL = 1e-6         # a point counts as feasible below this violation


class SolveStatus(str, Enum):
    """How a solve ended (in the spirit of Pyomo's TerminationCondition)."""

    OPTIMAL = "optimal"                  # converged to a (locally) optimal point
    ITERATION_LIMIT = "iteration_limit"  # stopped at its iteration or time limit; best point returned
    INFEASIBLE = "infeasible"            # no feasible point; the binding constraint is named
    ERROR = "error"                      # the solver failed (numerical trouble, crash)
    UNAVAILABLE = "unavailable"          # the backend's solver is not installed


@dataclass(frozen=True)
class SolveResult:
    status: SolveStatus
    solver: str
    objective: float | None          # the problem's objective (natural log of the physical objective)
    x: np.ndarray | None             # the point in the problem's variable space
    iterations: int
    wall_s: float
    message: str = ""
    binding: tuple[str, ...] = ()    # constraints that make the problem infeasible (worst first)
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.ITERATION_LIMIT) and self.x is not None


class Outcome(str, Enum):
    """What the solver itself says, before :func:`classify` checks it."""

    SUCCESS = "success"
    LIMIT = "limit"
    INFEASIBLE = "infeasible"
    ERROR = "error"


@dataclass(frozen=True)
class RawOutcome:
    outcome: Outcome
    x: np.ndarray | None
    iterations: int
    message: str
    extra: dict = field(default_factory=dict)
    best_x: np.ndarray | None = None   # the best feasible point seen, when the backend tracks one


@dataclass(frozen=True)
class Capabilities:
    """What a backend accepts beyond ``x0``, ``max_iter`` and ``tol``."""

    warm_start_multipliers: bool = False   # takes ``multipliers`` (``extra["multipliers"]`` of an earlier result)
    time_limit: bool = True                # honours ``time_limit_s``
    lower_bound: bool = False              # reports a proven lower bound (``extra["objective_bound"]``)


class Backend(ABC):
    """A named way to solve a :class:`~formulation.relaxed.problem.RelaxedProblem` (module docstring)."""

    name: str = ""
    description: str = ""
    capabilities: Capabilities = Capabilities()

    def unavailable_reason(self) -> str | None:
        """Why the backend cannot run here, or None when it can (imports its library: call lazily)."""
        return None

    def available(self) -> bool:
        return self.unavailable_reason() is None

    @abstractmethod
    def run(self, problem, x0: np.ndarray, max_iter: int | None, time_limit_s: float | None, tol: float,
            multipliers: dict | None, options: dict) -> RawOutcome:
        """Solve from ``x0`` (within the bounds) and say how it ended."""

    def solve(self, problem, x0=None, max_iter: int | None = None, time_limit_s: float | None = None,
              tol: float = 1e-6, multipliers: dict | None = None, options: dict | None = None) -> SolveResult:
        """Solve ``problem`` from ``x0`` (default its initial point); statuses as in the module docstring.

        ``multipliers`` is ignored by backends without the capability; ``options`` go to the
        solver as they are.
        """
        start = (time.perf_counter(), time.process_time())
        reason = self.unavailable_reason()
        if reason is not None:
            return self._result(SolveStatus.UNAVAILABLE, problem, None, 0, start, reason)
        certain = certain_infeasibility(problem)
        if certain is not None:
            row, why = certain
            return self._result(SolveStatus.INFEASIBLE, problem, None, 0, start, why, (row,),
                                {"detected": "before solving"})
        x0 = problem.initial_point() if x0 is None else np.asarray(x0, dtype=float)
        x0 = np.clip(x0, problem.lower, problem.upper)
        if not self.capabilities.warm_start_multipliers:
            multipliers = None
        try:
            raw = self.run(problem, x0, max_iter, time_limit_s, tol, multipliers, dict(options or {}))
        except Exception as exc:  # a callback or the solver library failed
            return self._result(SolveStatus.ERROR, problem, None, 0, start, f"{self.name} failed: {exc!r}")
        return classify(self, problem, raw, start)

    def _result(self, status, problem, x, iterations, start, message, binding=(), extra=None) -> SolveResult:
        objective = None
        if x is not None:
            with np.errstate(all="ignore"):
                objective = float(problem.objective(x))
        return SolveResult(status=status, solver=self.name, objective=objective, x=x, iterations=iterations,
                           wall_s=time.perf_counter() - start[0], message=message, binding=tuple(binding),
                           extra={**(extra or {}), "cpu_s": time.process_time() - start[1]})


def _violations(problem, x) -> list[tuple[str, float]]:
    with np.errstate(all="ignore"):
        return problem.violations(x)


def _worst(violated) -> float:
    return violated[0][1] if violated else 0.0


def classify(backend: Backend, problem, raw: RawOutcome, start) -> SolveResult:
    """The one post-solve classification (module docstring, step 3)."""
    extra = dict(raw.extra)
    if raw.x is None or not np.all(np.isfinite(raw.x)):
        status = SolveStatus.INFEASIBLE if raw.outcome is Outcome.INFEASIBLE else SolveStatus.ERROR
        return backend._result(status, problem, None, raw.iterations, start,
                               f"{raw.message} (no finite point returned)", (), extra)
    x = np.asarray(raw.x, dtype=float)
    violated = _violations(problem, x)
    names = [name for name, _ in violated]
    worst = f"{violated[0][0]} by {violated[0][1]:.3g}" if violated else ""
    if raw.outcome is Outcome.SUCCESS:
        if _worst(violated) > VIOLATION_TOL:
            return backend._result(SolveStatus.ERROR, problem, x, raw.iterations, start,
                                   f"{raw.message}, but {len(violated)} constraint(s) are violated (worst {worst})",
                                   names, extra)
        return backend._result(SolveStatus.OPTIMAL, problem, x, raw.iterations, start, raw.message, (), extra)
    if raw.outcome is Outcome.LIMIT:
        best = x
        if raw.best_x is not None:
            with np.errstate(all="ignore"):
                better = _worst(violated) > FEASIBLE_TOL or problem.objective(raw.best_x) < problem.objective(x)
            if better:
                best = np.asarray(raw.best_x, dtype=float)
        feasible = _worst(_violations(problem, best)) <= FEASIBLE_TOL
        return backend._result(SolveStatus.ITERATION_LIMIT, problem, best, raw.iterations, start,
                               f"{raw.message}; {'best feasible point' if feasible else 'last point (not feasible)'} "
                               f"returned", (), {**extra, "feasible": feasible})
    if raw.outcome is Outcome.INFEASIBLE:
        return backend._result(SolveStatus.INFEASIBLE, problem, x, raw.iterations, start,
                               raw.message + (f"; most violated: {worst}" if violated else ""), names, extra)
    return backend._result(SolveStatus.ERROR, problem, x, raw.iterations, start, raw.message, names, extra)


# ---- infeasibility certain without solving ----------------------------------------------------------
def minimum_area_mm2(problem) -> float:
    """Area of the smallest hardware in the template's ranges (area grows with every hardware variable)."""
    return problem.area(np.array(problem.variables.lower, dtype=float)).value


def compute_bound_s(problem) -> float:
    """Latency lower bound: ``sum_i n_i MACs_i / max PEs / f_clk`` (every MAC of the largest mesh busy)."""
    from formulation.goals import seconds

    template = problem.template
    max_pes = template.mesh_x_range[1] * template.mesh_y_range[1]
    macs = sum(entry.count * entry.layer.macs for entry in problem.network.layers)
    return seconds(macs / max_pes, template.base.clock_GHz)


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
    """``(row name, reason)`` when the problem is infeasible for a reason checked without solving."""
    budget = getattr(problem, "area_budget_mm2", None)
    t = problem.template
    if budget is not None:
        smallest = minimum_area_mm2(problem)
        if budget < smallest * (1 - 1e-9):
            return "area", (f"area budget {budget:.6g} mm^2 is below the smallest hardware of template {t.name} "
                            f"({t.mesh_x_range[0]}x{t.mesh_y_range[0]} PEs, smallest buffers): {smallest:.6g} mm^2")
    caps = getattr(problem, "caps", None)
    cap = None if caps is None else caps.latency_s
    if cap is not None:
        bound = compute_bound_s(problem)
        if cap < bound * (1 - 1e-9):
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


# ---- the registry --------------------------------------------------------------------------------
_REGISTRY: dict[str, Backend] = {}
PYOMO_PREFIX = "pyomo:"


def register(backend: Backend) -> Backend:
    _REGISTRY[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    """The backend called ``name``; ``pyomo:NAME`` (or an unregistered ``NAME`` that Pyomo's
    ``SolverFactory`` finds here) solves the algebraic Pyomo model with that Pyomo solver."""
    from formulation.specs.types import SpecError

    _load_builtin_backends()
    if name in _REGISTRY:
        return _REGISTRY[name]
    from formulation.relaxed.solvers.pyomo_any import PyomoSolverBackend, pyomo_solver_available

    solver = name[len(PYOMO_PREFIX):] if name.startswith(PYOMO_PREFIX) else name
    if solver and (name.startswith(PYOMO_PREFIX) or pyomo_solver_available(solver)):
        return PyomoSolverBackend(solver)
    raise SpecError(f"--solver = {name!r}: unknown solver (registered: {', '.join(sorted(_REGISTRY))}; "
                    f"or {PYOMO_PREFIX}NAME for a solver Pyomo's SolverFactory finds)")


def backend_names() -> list[str]:
    _load_builtin_backends()
    return sorted(_REGISTRY)


def _load_builtin_backends() -> None:
    """Import every module of this package, which registers its backends (cheap: solver libraries load
    on first solve), so a new backend is one new file."""
    import importlib
    import pkgutil

    import formulation.relaxed.solvers as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
