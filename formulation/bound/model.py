"""The node relaxation: a convex program in the log hardware variables whose optimum bounds a box.

For a box ``B`` of hardware (:class:`~formulation.bound.layer_terms.HardwareBox`) and every layer
``i`` (run ``n_i`` times) the constants ``E_i`` (energy floor) and ``F_i`` (cycle floor) of
:func:`~formulation.bound.layer_terms.layer_terms` hold at every hardware point of ``B`` and for
every mapping. The model, in natural logs (``x = ln mesh_x``, ``y = ln mesh_y``, ``z_l = ln size_l``,
``tau_i = ln cycles_i``):

Variables
    ``x``, ``y``, ``z[l]`` within the box (their integer bounds, in logs); ``tau[i]`` free.
Constraints
    ``compute[i]``  ``tau_i >= ln MACs_i - x - y``  (``cycles >= MACs / S >= MACs / PEs``);
    ``floor[i]``    ``tau_i >= ln F_i``;
    ``area``        ``ln(exp(x + y) (A_mac + sum_{per-PE l} a_l exp(z_l)) + sum_{shared l} a_l exp(z_l)
                    + fixed) <= ln A`` (:mod:`formulation.technology`: area is linear in each size);
    ``latency_cap`` (optional) ``ln T <= ln cap`` (the ε-constraint points' bound);
Objective (``E = sum_i n_i E_i``, ``T = sum_i n_i exp(tau_i) / f_clk``)
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

The model is built once per network and template; a node changes only the variable bounds and
the mutable floors (:meth:`NodeModel.solve`).
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

#: Relative slack taken off IPOPT's optimum (its tolerances are 1e-8).
SOLVER_SLACK = 1e-6
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
        m.ln_floor = pyo.Param(m.layers, mutable=True, initialize=0.0)
        m.energy = pyo.Param(mutable=True, initialize=1.0)
        macs = {i: e.layer.macs for i, e in enumerate(self.network.layers)}
        count = {i: e.count for i, e in enumerate(self.network.layers)}
        m.compute = pyo.Constraint(m.layers, rule=lambda m, i: m.tau[i] >= math.log(macs[i]) - m.x - m.y)
        m.floor = pyo.Constraint(m.layers, rule=lambda m, i: m.tau[i] >= m.ln_floor[i])
        if self.area_budget_mm2 is not None:
            pe_fixed, per_pe, shared, fixed = self._area_coefficients()
            area = pyo.exp(m.x + m.y) * pe_fixed + fixed
            area += sum(a * pyo.exp(m.x + m.y + m.z[n]) for n, a in per_pe.items())
            area += sum(a * pyo.exp(m.z[n]) for n, a in shared.items())
            m.area = pyo.Constraint(expr=pyo.log(area) <= math.log(self.area_budget_mm2))
        clock = clock_hz(self.template.base.clock_GHz)
        ln_t = pyo.log(sum(count[i] * pyo.exp(m.tau[i]) for i in layers) / clock)
        if self.latency_cap_s is not None:
            m.latency_cap = pyo.Constraint(expr=ln_t <= math.log(self.latency_cap_s))
        if self.objective is Objective.EDP:
            m.objective = pyo.Objective(expr=pyo.log(m.energy) + ln_t)
        elif self.objective is Objective.LATENCY:
            m.objective = pyo.Objective(expr=ln_t)
        else:
            m.objective = pyo.Objective(expr=pyo.log(m.energy))
        return m

    def terms(self, box: HardwareBox) -> tuple[float, list[float]]:
        """``(E, [F_i])``: the network energy floor and the per-layer cycle floors over ``box``."""
        energy, floors = 0.0, []
        for entry in self.network.layers:
            t = layer_terms(entry.layer, self.template, box)
            energy += entry.count * t.energy_pJ
            floors.append(t.cycles_floor)
        return energy, floors

    def solve(self, box: HardwareBox) -> NodeBound:
        """The relaxation's optimum over ``box`` (inf when even its smallest hardware breaks the budget)."""
        if self.area_budget_mm2 is not None and box.min_area_mm2(self.template) > self.area_budget_mm2 * (1 + 1e-9):
            return NodeBound(math.inf, math.inf, math.inf, {})
        m = self.model
        energy, floors = self.terms(box)
        clock = clock_hz(self.template.base.clock_GHz)
        fastest = sum(e.count * max(f, e.layer.macs / (box.mesh_x[1] * box.mesh_y[1]))
                      for e, f in zip(self.network.layers, floors)) / clock
        if self.latency_cap_s is not None and fastest > self.latency_cap_s * (1 + 1e-9):
            return NodeBound(math.inf, math.inf, math.inf, {})  # even the box's largest mesh is too slow
        m.energy.set_value(energy)
        for i, f in enumerate(floors):
            m.ln_floor[i].set_value(math.log(f))
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
        solver = pyo.SolverFactory("cyipopt")
        solver.config.options.update({"print_level": 0, "tol": 1e-10, "max_iter": 200})
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
        pes = math.exp(pyo.value(m.x) + pyo.value(m.y))
        latency = sum(e.count * max(f, e.layer.macs / pes) for e, f in zip(self.network.layers, floors)) / clock
        hardware = {"mesh_x": math.exp(pyo.value(m.x)), "mesh_y": math.exp(pyo.value(m.y)),
                    **{n: math.exp(pyo.value(m.z[n])) for n in m.sized}}
        return NodeBound(value, energy, latency, hardware)
