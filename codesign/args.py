"""Argument helpers shared by the ``codesign`` subcommands: numbers, and one validation of goals and caps."""

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


#: Bounds of the numeric flags (a value outside is refused with the bound in the message).
MAX_TIME_LIMIT_S = 1e6
MAX_STARTS = 1000
MAX_JOBS = 256
MAX_SEED = 2 ** 32 - 1
MAX_EVALUATIONS = 10 ** 12
MIN_PARETO_POINTS, MAX_PARETO_POINTS = 2, 100


def _number_arg(value, flag: str, kind=float, minimum: float = 0.0, strict: bool = True,
                maximum: float | None = None):
    """``value`` (a string from argparse, or None) as a number above ``minimum`` (and at most ``maximum``),
    or a one-line SpecError."""
    if value is None:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise SpecError(f"{flag} = {str(value)[:40]!r}: not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(number):
        raise SpecError(f"{flag} = {value!r}: must be finite")
    if number < minimum or (strict and number == minimum):
        raise SpecError(f"{flag} = {str(value)[:40]!r}: must be {'>' if strict else '>='} {minimum:g}")
    if maximum is not None and number > maximum:
        raise SpecError(f"{flag} = {str(value)[:40]!r}: must be at most {maximum:,}")
    return number


def goal_args(args, energy_cap: bool = False):
    """(objective, area budget, caps) from ``--objective``, ``--area-budget`` and the cap flags.

    The one validation ``solve`` and ``optimize`` share: positive finite numbers, a known objective,
    and ``--objective power`` only with ``--latency-cap`` (the model has no static power, so without a
    latency cap power falls without bound by idling).
    """
    from formulation.goals import Caps, Objective

    try:
        objective = Objective(str(args.objective).lower())
    except ValueError:
        raise SpecError(f"--objective = {str(args.objective)[:40]!r}: use one of "
                        f"{', '.join(o.value for o in Objective)}") from None
    caps = Caps(latency_s=_number_arg(args.latency_cap, "--latency-cap"),
                energy_pJ=_number_arg(getattr(args, "energy_cap", None), "--energy-cap") if energy_cap else None,
                power_mW=_number_arg(args.power_cap, "--power-cap"))
    if objective is Objective.POWER and caps.latency_s is None:
        raise SpecError("--objective = 'power': needs --latency-cap (the model has no static power, so without a "
                        "latency cap power falls without bound by idling)")
    return objective, _number_arg(args.area_budget, "--area-budget"), caps


def pareto_points(value) -> int | None:
    """``--pareto N``: the number of points of a front, from 2 to 100 (solve and optimize alike)."""
    return _number_arg(value, "--pareto", int, MIN_PARETO_POINTS, strict=False, maximum=MAX_PARETO_POINTS)


def time_limit_arg(value, flag: str = "--time-limit"):
    return _number_arg(value, flag, maximum=MAX_TIME_LIMIT_S)


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
