"""Argument helpers shared by the ``codesign`` subcommands."""

from __future__ import annotations

import argparse
import math

from formulation.specs.types import SpecError

TEMPLATE_HELP = ("built-in arch name or arch file (template: mesh sides /4..x4, bounded buffers /16..x16), or a "
                 "template YAML {arch, mesh_x: [lo, hi], mesh_y: [lo, hi], sizes: {LEVEL: [lo, hi]}}; default simple")


def add_goal_options(p: argparse.ArgumentParser) -> None:
    """What to minimize and under which budget and caps (optimize and solve)."""
    p.add_argument("--area-budget", metavar="MM2", help="on-chip area budget in mm2 (default: none)")
    p.add_argument("--objective", default="edp", help="latency, energy, edp or power (default edp)")
    p.add_argument("--latency-cap", metavar="SECONDS", help="upper bound on network latency (s)")
    p.add_argument("--power-cap", metavar="MW", help="upper bound on average power (mW)")


def _number_arg(value, flag: str, kind=float, minimum: float = 0.0, strict: bool = True):
    """``value`` (a string from argparse, or None) as a number above ``minimum``, or a one-line SpecError."""
    if value is None:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise SpecError(f"{flag} = {value!r}: not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(number):
        raise SpecError(f"{flag} = {value!r}: must be finite")
    if number < minimum or (strict and number == minimum):
        raise SpecError(f"{flag} = {value!r}: must be {'>' if strict else '>='} {minimum:g}")
    return number


SOLVER_HELP = ("NLP backend of the relaxation (default cyipopt; registered: cyipopt, pyomo-ipopt, scip; "
               "pyomo:NAME for any solver Pyomo's SolverFactory finds)")
HOOK_HELP = ("FILE.py:FUNCTION or MODULE:FUNCTION called as FUNCTION(model, problem) on the relaxation's "
             "Pyomo model before every solve, to add constraints (repeatable; see README 'Architecture')")


def add_solver_options(p, what: str) -> None:
    """``--solver`` and ``--model-hook`` on a subcommand's parser."""
    p.add_argument("--solver", default="cyipopt", help=f"{SOLVER_HELP}; used for {what}")
    p.add_argument("--model-hook", action="append", default=[], metavar="FILE:FUNCTION", help=HOOK_HELP)


def relaxation_solver(args) -> tuple[str, tuple[str, ...]]:
    """The checked ``--solver`` name and ``--model-hook`` specs (file paths made absolute for worker processes)."""
    from pathlib import Path

    from formulation.relaxed.hooks import load_hook
    from formulation.relaxed.solvers import get_backend

    backend = get_backend(args.solver)
    reason = backend.unavailable_reason()
    if reason is not None:
        raise SpecError(f"--solver = {args.solver!r}: not available here ({reason})")
    hooks = []
    for spec in args.model_hook:
        where, sep, name = spec.rpartition(":")
        if sep and where.endswith(".py"):
            spec = f"{Path(where).resolve()}:{name}"
        load_hook(spec)  # a bad file or name is a one-line error now, not in a worker
        hooks.append(spec)
    return args.solver, tuple(hooks)
