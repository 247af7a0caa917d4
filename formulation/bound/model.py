"""The node relaxation: a convex program in the log hardware variables whose optimum bounds a box.

For a box ``B`` of hardware (:class:`~formulation.bound.layer_terms.HardwareBox`) and every layer
``i`` (run ``n_i`` times) the cycle floor ``F_i`` and the energy-cycles front of
:func:`~formulation.bound.layer_terms.layer_terms` hold at every hardware point of ``B`` and for
every mapping. The model, in natural logs (``x = ln mesh_x``, ``y = ln mesh_y``, ``z_l = ln size_l``,
``tau_i = ln cycles_i``, ``e_i = ln energy_i``):

Variables
    ``x``, ``y``, ``z[l]`` within the box (their integer bounds, in logs); ``tau[i]``, ``e[i]`` free.
Constraints
    ``compute[i]``  ``tau_i >= ln MACs_i - x - y``  (``cycles >= MACs / S >= MACs / PEs``);
    ``floor[i]``    ``tau_i >= ln F_i``;
    ``cut[i, k]``   ``e_i >= a_ik tau_i + b_ik``, the pieces of the lower convex hull of the front
                    in logs (:func:`energy_cuts`; the flat piece is the energy floor ``E_i``);
    ``area``        ``ln(exp(x + y) (A_mac + sum_{per-PE l} a_l exp(z_l)) + sum_{shared l} a_l exp(z_l)
                    + fixed) <= ln A`` (:mod:`formulation.technology`: area is linear in each size);
    ``latency_cap`` (optional) ``ln T <= ln cap`` (the ε-constraint points' bound);
Objective (``E = sum_i n_i exp(e_i)``, ``T = sum_i n_i exp(tau_i) / f_clk``)
    edp ``ln E + ln T``, latency ``ln T``, energy ``ln E``.

Every function is a log-sum-exp of affine forms or affine, so the program is convex and IPOPT's
local optimum is the global one; since every legal design in ``B`` gives a feasible point with
an objective no smaller than its own (its cycles are at least both floors, its area meets the
budget), the optimum is a lower bound for ``B``. The reported bound is lowered by
:data:`SOLVER_SLACK` (relative) to cover IPOPT's tolerance. Power (energy over latency) is not
monotone in the latency floor and is not bounded directly; a latency cap can be kept (for the
power bound of an ε-constraint point, :func:`search.bnb.power_band`), the other caps are dropped
(a relaxation may drop constraints). A box whose largest mesh already misses the latency cap has
no design under the cap (the floors hold at every point of the box): its bound is inf.

The model is built once per network and template; a node changes only the variable bounds, the
mutable floors and the cuts' coefficients (:meth:`NodeModel.solve`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyomo.environ as pyo

from formulation.goals import Objective, clock_hz
from formulation.specs.template import ArchTemplate
from formulation.specs.types import Network, SpecError
from formulation.technology import mac_area_mm2, storage_area_mm2
from formulation.bound.layer_terms import HardwareBox, layer_terms
from formulation.fd_capture import captured_solve

#: Relative slack taken off IPOPT's optimum (its tolerances are 1e-8).
SOLVER_SLACK = 1e-6
#: Linear cuts per layer for ``ln E_i`` as a function of ``ln cycles_i`` (:func:`energy_cuts`).
CUTS = 16


def energy_cuts(front, count: int = CUTS) -> list[tuple[float, float]]:
    """``count`` lines ``(a, b)`` with ``ln E >= a ln C + b`` for every mapping of a layer (pads repeat the last).

    ``front``: ``(cycles, energy)`` pairs such that a mapping with ``C`` cycles has energy at least
    ``f(C) = min {E_j : C_j <= C}`` (:class:`~formulation.bound.layer_terms.LayerBoundTerms`).
    In logs ``f`` is a non-increasing step function; the lower convex hull of its points
    ``(ln C_j, ln E_j)``, continued flat after the last, lies below it (it is non-increasing and
    at most ``ln E_j`` at ``ln C_j``), so each of its pieces, and any subset of them, is a valid
    affine under-estimator; together they keep the node problem convex. Hulls with more pieces
    than ``count - 1`` keep an evenly spread subset (weaker, still valid).
    """
    points = sorted((math.log(c), math.log(e)) for c, e in front)
    pareto, lowest = [], math.inf
    for x, y in points:
        if y < lowest:
            if pareto and pareto[-1][0] == x:
                pareto.pop()
            pareto.append((x, y))
            lowest = y
    hull: list[tuple[float, float]] = []
    for p in pareto:
        while len(hull) >= 2 and (hull[-1][0] - hull[-2][0]) * (p[1] - hull[-2][1]) \
                - (hull[-1][1] - hull[-2][1]) * (p[0] - hull[-2][0]) <= 0:
            hull.pop()
        hull.append(p)
    pieces = [((y1 - y0) / (x1 - x0), y0 - (y1 - y0) / (x1 - x0) * x0) for (x0, y0), (x1, y1) in zip(hull, hull[1:])]
    if len(pieces) > count - 1:
        pieces = [pieces[round(k * (len(pieces) - 1) / (count - 2))] for k in range(count - 1)]
    pieces.append((0.0, hull[-1][1]))
    return pieces + [pieces[-1]] * (count - len(pieces))
BOUNDED_OBJECTIVES = (Objective.EDP, Objective.ENERGY, Objective.LATENCY)


@dataclass(frozen=True)
class NodeBound:
    """The bound over one box: ``value`` in the objective's units (pJ*s, pJ or s), or inf if no point fits."""

    value: float
    energy_pJ: float
    latency_s: float
    hardware: dict


class NodeModel:
    """The Pyomo model of the node relaxation for one network, template, objective and area budget."""

    def __init__(self, network: Network, template: ArchTemplate, objective: Objective,
                 area_budget_mm2: float | None, latency_cap_s: float | None = None) -> None:
        if objective not in BOUNDED_OBJECTIVES:
            raise SpecError(f"objective = {objective.value!r}: the lower bound covers "
                            f"{', '.join(o.value for o in BOUNDED_OBJECTIVES)}")
        self.network, self.template, self.objective = network, template, objective
        self.area_budget_mm2 = area_budget_mm2
        self.latency_cap_s = latency_cap_s
        self.model = self._build()

    def _area_coefficients(self) -> tuple[float, dict[str, float], dict[str, float], float]:
        """(per-PE MAC area, per-PE words -> mm2, shared words -> mm2, fixed area of unsized levels)."""
        base = self.template.base
        variable = {name for name, _, _ in self.template.size_ranges}
        array = set(self.template.array_levels)
        per_pe, shared, fixed_pe, fixed = {}, {}, 0.0, 0.0
        for index, level in enumerate(base.levels):
            if level.size_words is None:
                continue
            word = storage_area_mm2(1.0, level.word_bits, level.technology.value)
            if level.name in variable:
                (per_pe if index in array else shared)[level.name] = word
            elif index in array:
                fixed_pe += word * level.size_words
            else:
                fixed += word * level.size_words
        return mac_area_mm2(base.mac.word_bits) + fixed_pe, per_pe, shared, fixed

    def _build(self) -> pyo.ConcreteModel:
        m = pyo.ConcreteModel(name="codesign_lower_bound")
        layers = list(range(len(self.network.layers)))
        m.layers = pyo.Set(initialize=layers)
        m.sized = pyo.Set(initialize=[name for name, _, _ in self.template.size_ranges])
        m.x = pyo.Var(initialize=0.0)
        m.y = pyo.Var(initialize=0.0)
        m.z = pyo.Var(m.sized, initialize=0.0)
        m.tau = pyo.Var(m.layers, initialize=0.0)
        m.e = pyo.Var(m.layers, initialize=0.0)
        m.ln_floor = pyo.Param(m.layers, mutable=True, initialize=0.0)
        m.pieces = pyo.Set(initialize=range(CUTS))
        m.slope = pyo.Param(m.layers, m.pieces, mutable=True, initialize=0.0)
        m.intercept = pyo.Param(m.layers, m.pieces, mutable=True, initialize=0.0)
        macs = {i: e.layer.macs for i, e in enumerate(self.network.layers)}
        count = {i: e.count for i, e in enumerate(self.network.layers)}
        m.compute = pyo.Constraint(m.layers, rule=lambda m, i: m.tau[i] >= math.log(macs[i]) - m.x - m.y)
        m.floor = pyo.Constraint(m.layers, rule=lambda m, i: m.tau[i] >= m.ln_floor[i])
        m.cut = pyo.Constraint(m.layers, m.pieces,
                               rule=lambda m, i, k: m.e[i] >= m.slope[i, k] * m.tau[i] + m.intercept[i, k])
        if self.area_budget_mm2 is not None:
            pe_fixed, per_pe, shared, fixed = self._area_coefficients()
            area = pyo.exp(m.x + m.y) * pe_fixed + fixed
            area += sum(a * pyo.exp(m.x + m.y + m.z[n]) for n, a in per_pe.items())
            area += sum(a * pyo.exp(m.z[n]) for n, a in shared.items())
            m.area = pyo.Constraint(expr=pyo.log(area) <= math.log(self.area_budget_mm2))
        clock = clock_hz(self.template.base.clock_GHz)
        ln_t = pyo.log(sum(count[i] * pyo.exp(m.tau[i]) for i in layers) / clock)
        ln_e = pyo.log(sum(count[i] * pyo.exp(m.e[i]) for i in layers))
        if self.latency_cap_s is not None:
            m.latency_cap = pyo.Constraint(expr=ln_t <= math.log(self.latency_cap_s))
        if self.objective is Objective.EDP:
            m.objective = pyo.Objective(expr=ln_e + ln_t)
        elif self.objective is Objective.LATENCY:
            m.objective = pyo.Objective(expr=ln_t)
        else:
            m.objective = pyo.Objective(expr=ln_e)
        return m

    def terms(self, box: HardwareBox) -> tuple[list[list[tuple[float, float]]], list[float]]:
        """``([cuts_i], [F_i])``: each layer's energy cuts (:func:`energy_cuts`) and cycle floor over ``box``."""
        cuts, floors = [], []
        for entry in self.network.layers:
            t = layer_terms(entry.layer, self.template, box)
            cuts.append(energy_cuts(t.front or ((t.cycles_floor, t.energy_pJ),)))
            floors.append(t.cycles_floor)
        return cuts, floors

    def solve(self, box: HardwareBox) -> NodeBound:
        """The relaxation's optimum over ``box`` (inf when even its smallest hardware breaks the budget)."""
        if self.area_budget_mm2 is not None and box.min_area_mm2(self.template) > self.area_budget_mm2 * (1 + 1e-9):
            return NodeBound(math.inf, math.inf, math.inf, {})
        m = self.model
        cuts, floors = self.terms(box)
        clock = clock_hz(self.template.base.clock_GHz)
        fastest = sum(e.count * max(f, e.layer.macs / (box.mesh_x[1] * box.mesh_y[1]))
                      for e, f in zip(self.network.layers, floors)) / clock
        if self.latency_cap_s is not None and fastest > self.latency_cap_s * (1 + 1e-9):
            return NodeBound(math.inf, math.inf, math.inf, {})  # even the box's largest mesh is too slow
        for i, f in enumerate(floors):
            m.ln_floor[i].set_value(math.log(f))
            for k, (slope, intercept) in enumerate(cuts[i]):
                m.slope[i, k].set_value(slope)
                m.intercept[i, k].set_value(intercept)
        for var, (lo, hi) in ((m.x, box.mesh_x), (m.y, box.mesh_y)):
            var.setlb(math.log(lo))
            var.setub(math.log(hi))
            var.set_value(math.log(hi))
        for name, lo, hi in box.sizes:
            m.z[name].setlb(math.log(lo))
            m.z[name].setub(math.log(hi))
            m.z[name].set_value(math.log(lo))
        for i in m.layers:
            m.tau[i].set_value(max(pyo.value(m.ln_floor[i]), math.log(self.network.layers[i].layer.macs)
                                   - math.log(box.mesh_x[1] * box.mesh_y[1])))
            m.e[i].set_value(max(a * pyo.value(m.tau[i]) + b for a, b in cuts[i]))
        solver = pyo.SolverFactory("cyipopt")
        solver.config.options.update({"print_level": 0, "tol": 1e-10, "max_iter": 200})
        with captured_solve():  # no child process may start while the solve captures the output
            result = solver.solve(m, tee=False)
            if str(result.solver.termination_condition) not in ("optimal", "locallyOptimal") \
                    and self.latency_cap_s is not None:
                m.latency_cap.deactivate()  # IPOPT found no point under the cap: bound without it (weaker, valid)
                try:
                    result = solver.solve(m, tee=False)
                finally:
                    m.latency_cap.activate()
        if str(result.solver.termination_condition) not in ("optimal", "locallyOptimal"):
            raise RuntimeError(f"lower-bound node: IPOPT ended with {result.solver.termination_condition}")
        value = math.exp(pyo.value(m.objective)) * (1 - SOLVER_SLACK)
        energy = sum(e.count * math.exp(max(a * pyo.value(m.tau[i]) + b for a, b in cuts[i]))
                     for i, e in enumerate(self.network.layers))
        pes = math.exp(pyo.value(m.x) + pyo.value(m.y))
        latency = sum(e.count * max(f, e.layer.macs / pes) for e, f in zip(self.network.layers, floors)) / clock
        hardware = {"mesh_x": math.exp(pyo.value(m.x)), "mesh_y": math.exp(pyo.value(m.y)),
                    **{n: math.exp(pyo.value(m.z[n])) for n in m.sized}}
        return NodeBound(value, energy, latency, hardware)
