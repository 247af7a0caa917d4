"""One result type and one status enum for every solver backend, and the registry of backends by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np


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


@dataclass(frozen=True)
class Backend:
    """A named way to solve a :class:`~formulation.relaxed.problem.RelaxedProblem`.

    ``solve(problem, x0=None, max_iter=..., time_limit_s=..., tol=...) -> SolveResult`` and
    ``available() -> bool`` are imported lazily, so a missing optional solver costs nothing until used.
    """

    name: str
    description: str
    solve: Callable[..., SolveResult]
    available: Callable[[], bool]


_REGISTRY: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    _REGISTRY[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    from formulation.specs.types import SpecError

    _load_builtin_backends()
    if name not in _REGISTRY:
        raise SpecError(f"--solver = {name!r}: unknown solver (available: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def backend_names() -> list[str]:
    _load_builtin_backends()
    return sorted(_REGISTRY)


def _load_builtin_backends() -> None:
    """Import the modules that register the built-in backends (cheap: solvers load on first solve)."""
    import importlib

    for module in ("cyipopt_direct", "pyomo_ipopt", "scip"):
        try:
            importlib.import_module(f"formulation.relaxed.solvers.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"formulation.relaxed.solvers.{module}":
                raise
