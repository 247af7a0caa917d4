"""Solver backends for the continuous relaxation, chosen by name (see :mod:`formulation.relaxed.solvers.base`)."""

from formulation.relaxed.solvers.base import (Backend, Capabilities, Outcome, RawOutcome, SolveResult, SolveStatus,
                                              backend_names, get_backend, register)

__all__ = ["Backend", "Capabilities", "Outcome", "RawOutcome", "SolveResult", "SolveStatus", "backend_names",
           "get_backend", "register"]
