"""Pareto fronts of the relaxation: ε-constraint and weighted-sum sweeps of a primary objective vs latency.

Both sweeps build the problem once and change only its caps or its objective weights, and
warm-start every solve from the previous solution.

Anchors (both methods): the *fast* end minimizes latency; the *efficient* end minimizes energy
and is taken at its design's real latency (:func:`tight_cycles`). The efficient end minimizes
energy even when the primary objective is power: the relaxation has no static power, so with no
latency cap power falls without bound by idling (the cycle epigraph variables grow to their
bounds), and beyond the minimum-energy design's latency the power front is just ``E_min / T``.
(A lexicographic refinement, minimum latency subject to the minimum energy, was tried and
dropped: the energy front is so flat there that it took thousands of iterations, and a relative
energy slack of 1e-4 already moved the end by 9 % in latency.)

* :func:`epsilon_constraint`: ``n_points`` caps ``ε`` spaced geometrically from the fast end's
  latency (times 1 + 1e-3, so the tightest problem has an interior: at exactly the minimum
  latency the feasible set has none and IPOPT needs hundreds of iterations) to the efficient
  end's; minimize the primary objective subject to ``latency <= ε``. The caps are solved in
  decreasing order, from the efficient end (whose solution and multipliers are optimal for the
  loosest cap), each from the previous solution and multipliers. Every warm start then violates
  its new cap a little, but on ResNet-18 five points took 390-550 iterations in all against
  about 980 in increasing order (where every warm start is feasible but the tight end, the
  costly one, comes first without duals).
  The points are returned in increasing ``ε``.
* :func:`weighted_sum`: ``n_points`` weights ``w`` evenly in [0, 1]; minimize
  ``w ln(P / P_ref) / ln(P_nadir / P_ref) + (1 - w) ln(T / T_ref) / ln(T_nadir / T_ref)`` with
  ``P_ref, T_ref`` the anchors' best values and ``P_nadir, T_nadir`` the other anchor's values (the
  usual utopia/nadir normalization, in logs).

Every point is reported at its design's real latency: the cycle variables are epigraph variables
that objectives without latency (or power, which idling lowers) leave above the cycles the design
needs, so :func:`tight_cycles` sets them to ``max(compute, bandwidth cycles)`` first. This
changes neither feasibility nor energy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np

from formulation.goals import Caps, Objective
from formulation.pareto import hypervolume_2d, non_dominated
from formulation.relaxed.problem import RelaxedProblem, tight_cycles
from formulation.relaxed.sensitivity import Smooth
from formulation.relaxed.solvers.base import SolveResult, SolveStatus, get_backend

PRIMARY = {"power": ("power_mW", Objective.POWER), "energy": ("energy_pJ", Objective.ENERGY)}
FAST_END_SLACK = 1e-3


@dataclass(frozen=True)
class ParetoPoint:
    latency_s: float
    primary: float             # the primary objective's value: mW (power) or pJ (energy)
    energy_pJ: float
    power_mW: float
    area_mm2: float
    status: SolveStatus
    wall_s: float
    x: np.ndarray | None
    iterations: int = 0
    parameter: float | None = None   # the latency cap ε (s) or the weight w of this point
    cpu_s: float | None = None       # process CPU time of the solve, when the backend reports it

    @property
    def ok(self) -> bool:
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.ITERATION_LIMIT) and self.x is not None

    def as_dict(self) -> dict:
        return {"latency_s": self.latency_s, "primary": self.primary, "energy_pJ": self.energy_pJ,
                "power_mW": self.power_mW, "area_mm2": self.area_mm2, "status": self.status.value,
                "wall_s": self.wall_s, "cpu_s": self.cpu_s, "iterations": self.iterations,
                "parameter": self.parameter}


@dataclass(frozen=True)
class ParetoFront:
    primary: str                      # "power" or "energy"
    method: str                       # "epsilon-constraint" or "weighted-sum"
    points: tuple[ParetoPoint, ...]   # by increasing cap (ε-constraint) or weight (weighted sum)
    anchors: dict = field(default_factory=dict)   # "fast" / "efficient": ParetoPoint
    wall_s: float = 0.0               # the whole sweep, anchors included

    def non_dominated(self, rel_tol: float = 1e-9) -> ParetoFront:
        """The solved points no other solved point dominates (latency and primary both minimized), by latency
        (:func:`formulation.pareto.non_dominated`)."""
        good = [p for p in self.points if p.ok]
        keep = non_dominated([(p.latency_s, p.primary) for p in good], rel_tol)
        return replace(self, points=tuple(good[k] for k in keep))

    def hypervolume(self, ref: tuple[float, float]) -> float:
        """Area dominated by the solved points and bounded by ``ref = (latency_s, primary)`` (exact, 2-D)."""
        return hypervolume_2d([(p.latency_s, p.primary) for p in self.non_dominated().points], ref)

    def table(self) -> str:
        unit = "mW" if self.primary == "power" else "pJ"
        head = f"{'#':>3} {'latency ms':>12} {self.primary + ' ' + unit:>16} {'energy uJ':>12} {'power mW':>10} " \
               f"{'area mm2':>9} {'status':>16} {'iters':>6} {'wall s':>7}"
        lines = [head, "-" * len(head)]
        for j, p in enumerate(self.points):
            lines.append(f"{j:>3} {p.latency_s * 1e3:>12.5g} {p.primary:>16.6g} {p.energy_pJ / 1e6:>12.6g} "
                         f"{p.power_mW:>10.5g} {p.area_mm2:>9.4g} {p.status.value:>16} {p.iterations:>6} "
                         f"{p.wall_s:>7.2f}")
        return "\n".join(lines)


def _point(problem: RelaxedProblem, result: SolveResult, primary_key: str, parameter=None) -> ParetoPoint:
    """The design of ``result`` at its real latency (:func:`tight_cycles`)."""
    nan = math.nan
    if result.x is None:
        return ParetoPoint(nan, nan, nan, nan, nan, result.status, result.wall_s, None, result.iterations, parameter,
                           result.extra.get("cpu_s"))
    x = tight_cycles(problem, result.x)
    values = {key: s.value for key, s in problem.totals(x).items()}
    return ParetoPoint(values["latency_s"], values[primary_key], values["energy_pJ"], values["power_mW"],
                       values["area_mm2"], result.status, result.wall_s, x, result.iterations, parameter,
                       result.extra.get("cpu_s"))


class _Solver:
    """One backend with the sweep's options; passes the previous duals when the backend declares it takes them."""

    def __init__(self, backend: str, max_iter: int, time_limit_s: float | None, tol: float):
        self.backend = get_backend(backend)
        self.options = {"max_iter": max_iter, "time_limit_s": time_limit_s, "tol": tol}

    def __call__(self, problem, x0=None, previous: SolveResult | None = None) -> SolveResult:
        duals = previous.extra.get("multipliers") if previous is not None else None
        if not self.backend.capabilities.warm_start_multipliers:
            duals = None
        return self.backend.solve(problem, x0=x0, multipliers=duals, **self.options)


def _check(result: SolveResult, what: str) -> SolveResult:
    if not result.ok:
        from formulation.specs.types import SpecError

        binding = f" (binding: {', '.join(result.binding[:3])})" if result.binding else ""
        raise SpecError(f"{what}: {result.status.value}{binding}: {result.message}")
    return result


def anchors(problem: RelaxedProblem, solve: _Solver, primary: str) -> tuple[dict, dict]:
    """The fast and efficient ends (see the module docstring): points and the solve results behind them."""
    key, _ = PRIMARY[primary]
    free = problem.with_caps(Caps())
    fast = _check(solve(free.with_objective(Objective.LATENCY)), "minimum latency")
    efficient = _check(solve(free.with_objective(Objective.ENERGY), x0=fast.x), "minimum energy")
    points = {"fast": _point(free, fast, key), "efficient": _point(free, efficient, key)}
    return points, {"fast": fast, "efficient": efficient}


def epsilon_constraint(problem: RelaxedProblem, n_points: int, backend: str = "cyipopt", primary: str = "power",
                       max_iter: int = 3000, time_limit_s: float | None = None, tol: float = 1e-6) -> ParetoFront:
    """Minimize ``primary`` subject to ``latency <= ε`` for ``n_points`` geometric ε (module docstring).

    ``problem`` gives the network, template, area budget and structures; its objective and caps
    are replaced.
    """
    if primary not in PRIMARY:
        from formulation.specs.types import SpecError

        raise SpecError(f"primary = {primary!r}: expected one of {', '.join(PRIMARY)}")
    if n_points < 2:
        from formulation.specs.types import SpecError

        raise SpecError(f"n_points = {n_points}: an ε-constraint front needs at least 2 points")
    start = time.perf_counter()
    key, objective = PRIMARY[primary]
    solve = _Solver(backend, max_iter, time_limit_s, tol)
    ends, results = anchors(problem, solve, primary)
    t_fast, t_slow = ends["fast"].latency_s, ends["efficient"].latency_s
    lo = t_fast * (1 + FAST_END_SLACK)
    hi = max(t_slow, lo)
    epsilons = [lo * (hi / lo) ** (j / (n_points - 1)) for j in range(n_points)]
    base = problem.with_objective(objective, Caps(latency_s=epsilons[0]))
    # From the efficient end down: there the minimum-energy design is optimal, and its multipliers with
    # one for the cap row (power: d(ln E - ln T)/d ln T = -1) or zero (energy) are the duals.
    efficient = results["efficient"]
    x, previous = ends["efficient"].x, None
    duals = efficient.extra.get("multipliers")
    if duals is not None:
        pad = 1.0 if objective is Objective.POWER else 0.0
        mult_g = np.insert(duals["mult_g"], base.rows.cap["latency_s"], pad)  # the cap row's place (user rows follow)
        previous = replace(efficient, extra={"multipliers": {**duals, "mult_g": mult_g}})
    points = []
    for eps in reversed(epsilons):
        capped = base.with_caps(Caps(latency_s=eps))
        result = solve(capped, x0=x, previous=previous)
        points.append(_point(capped, result, key, eps))
        if result.ok:
            x, previous = result.x, result
    return ParetoFront(primary, "epsilon-constraint", tuple(reversed(points)), ends, time.perf_counter() - start)


class WeightedSumProblem:
    """``w * normalized ln(primary) + (1 - w) * normalized ln(latency)`` over ``base``'s constraints.

    Has the callback API of :class:`RelaxedProblem` (everything but the objective is ``base``'s).
    """

    def __init__(self, base: RelaxedProblem, primary: str, weight: float, refs: tuple[float, float],
                 spans: tuple[float, float]):
        self.base = base
        self.primary = primary
        self.weight = float(weight)
        self.ln_refs = (math.log(refs[0]), math.log(refs[1]))
        self.spans = spans

    def __getattr__(self, name):
        return getattr(self.base, name)

    def _smooth(self, x) -> Smooth:
        totals = self.base.totals(x)
        lat = totals["latency_s"]
        prim = totals[PRIMARY[self.primary][0]]
        ln_p = Smooth(math.log(prim.value), prim.grad / prim.value)
        ln_t = Smooth(math.log(lat.value), lat.grad / lat.value)
        return (self.weight / self.spans[0]) * (ln_p - self.ln_refs[0]) \
            + ((1 - self.weight) / self.spans[1]) * (ln_t - self.ln_refs[1])

    def objective(self, x) -> float:
        return self._smooth(x).value

    def gradient(self, x) -> np.ndarray:
        return self._smooth(x).grad


def weighted_sum(problem: RelaxedProblem, n_points: int, backend: str = "cyipopt", primary: str = "power",
                 max_iter: int = 3000, time_limit_s: float | None = None, tol: float = 1e-6) -> ParetoFront:
    """Minimize normalized ``w ln P + (1 - w) ln T`` for ``n_points`` weights in [0, 1] (module docstring)."""
    if primary not in PRIMARY:
        from formulation.specs.types import SpecError

        raise SpecError(f"primary = {primary!r}: expected one of {', '.join(PRIMARY)}")
    start = time.perf_counter()
    key, _ = PRIMARY[primary]
    solve = _Solver(backend, max_iter, time_limit_s, tol)
    ends, results = anchors(problem, solve, primary)
    fast, slow = ends["fast"], ends["efficient"]
    p_ref, p_nadir = min(fast.primary, slow.primary), max(fast.primary, slow.primary)
    t_ref, t_nadir = fast.latency_s, max(slow.latency_s, fast.latency_s)
    spans = (max(math.log(p_nadir / p_ref), 1e-12), max(math.log(t_nadir / t_ref), 1e-12))
    free = problem.with_caps(Caps())
    weights = [j / (n_points - 1) for j in range(n_points)] if n_points > 1 else [0.5]
    x, previous = results["fast"].x, None
    points = []
    for w in weights:
        wrapped = WeightedSumProblem(free, primary, w, (p_ref, t_ref), spans)
        result = solve(wrapped, x0=x, previous=previous)
        points.append(_point(free, result, key, w))
        if result.ok:
            x, previous = result.x, result
    return ParetoFront(primary, "weighted-sum", tuple(points), ends, time.perf_counter() - start)
