"""Solver backends for the continuous relaxation, chosen by name (see :mod:`formulation.solvers.base`)."""

from formulation.solvers.base import Backend, SolveResult, SolveStatus, backend_names, get_backend, register

__all__ = ["Backend", "SolveResult", "SolveStatus", "backend_names", "get_backend", "register"]
