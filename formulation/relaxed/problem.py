"""The continuous relaxation of network-wide co-design as NumPy callbacks for IPOPT-style solvers.

The formulation (variables, rows, objectives) is stated once in :mod:`formulation.relaxed.formulation`;
this is its fast rendering. Variables and rows are read through named blocks
(``problem.variables.xt[i, l, Dim.K]``, ``problem.rows.capacity[i, l]``, see
:mod:`formulation.relaxed.layout`). The layer rows are evaluated by the traced tapes of
:mod:`formulation.relaxed.compiled`; the area, cap rows and objective by the statement itself over
:class:`~formulation.relaxed.sensitivity.Smooth` numbers. Rows a user adds to the Pyomo model
through ``model_hooks`` (:mod:`formulation.relaxed.hooks`) follow the formulation's rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from formulation.goals import Caps, Objective, power_mW
from formulation.relaxed import formulation as F
from formulation.relaxed.compiled import Compiled, LayerEvaluation, compile_layers, evaluate_layers, layer_sparsity
from formulation.relaxed.formulation import LayerStructure, default_structure
from formulation.relaxed.sensitivity import Smooth, SmoothAlgebra
from formulation.specs.template import ArchTemplate, Hardware
from formulation.specs.types import Network, SpecError

__all__ = ["RelaxedProblem", "LayerStructure", "default_structure"]


@dataclass(frozen=True)
class _Evaluation:
    x: np.ndarray
    constraints: np.ndarray
    jacobian: np.ndarray         # values in the order of jacobian_structure()
    layers: LayerEvaluation
    objective: Smooth


class RelaxedProblem:
    """Objective, constraints and their derivatives (see the module docstring)."""

    def __init__(self, network: Network, template: ArchTemplate, objective: Objective | str = Objective.EDP,
                 area_budget_mm2: float | None = None, caps: Caps = Caps(),
                 structures: list[LayerStructure] | None = None, model_hooks: tuple = ()):
        self.network = network
        self.template = template
        self.objective_kind = Objective(objective)
        self.area_budget_mm2 = area_budget_mm2
        self.caps = caps
        self.structures = structures or [default_structure(template) for _ in network.layers]
        if len(self.structures) != len(network.layers):
            raise SpecError(f"structures = {len(self.structures)}: need one per layer ({len(network.layers)})")
        self.model_hooks = tuple(model_hooks)
        self.variables = F.declare_variables(network, template, self.structures)
        self.rows = F.declare_rows(network, template, area_budget_mm2, caps)
        self._compiled: Compiled | None = None   # built on first evaluation, shared by with_caps/with_objective
        self._user_rows = None                   # rows added by model_hooks, built on first use
        self._structure: tuple[np.ndarray, np.ndarray] | None = None
        self._evaluation: _Evaluation | None = None

    # ---- layout -------------------------------------------------------------------------------------
    @property
    def levels(self) -> int:
        return len(self.template.base.levels)

    @property
    def fanout_level(self) -> int:
        return self.template.array_fanout_level

    names = property(lambda self: list(self.variables.names))
    n = property(lambda self: self.variables.n)

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds of the variables (the formulation's, tightened by the model hooks)."""
        return self.variables.lower if self.user_rows is None else self.user_rows.lower

    @property
    def upper(self) -> np.ndarray:
        return self.variables.upper if self.user_rows is None else self.user_rows.upper

    @property
    def user_rows(self):
        """The rows ``model_hooks`` add (:class:`~formulation.relaxed.hooks.UserRows`), or None."""
        if self._user_rows is None and self.model_hooks:
            from formulation.relaxed.hooks import user_rows

            self._user_rows = user_rows(self)
        return self._user_rows

    @property
    def constraint_names(self) -> list[str]:
        extra = self.user_rows
        return list(self.rows.names) + (list(extra.names) if extra is not None else [])

    @property
    def cl(self) -> np.ndarray:
        extra = self.user_rows
        return self.rows.cl if extra is None else np.concatenate([self.rows.cl, extra.cl])

    @property
    def cu(self) -> np.ndarray:
        extra = self.user_rows
        return self.rows.cu if extra is None else np.concatenate([self.rows.cu, extra.cu])

    @property
    def m(self) -> int:
        extra = self.user_rows
        return self.rows.m + (len(extra.names) if extra is not None else 0)

    def _variant(self, objective, caps: Caps) -> RelaxedProblem:
        out = RelaxedProblem(self.network, self.template, objective, self.area_budget_mm2, caps, self.structures,
                             self.model_hooks)
        out._compiled = self._compiled
        out._user_rows = self._user_rows
        return out

    def with_caps(self, caps: Caps) -> RelaxedProblem:
        """The same problem with other caps (the ε-constraint sweep changes only these)."""
        return self._variant(self.objective_kind, caps)

    def with_objective(self, objective: Objective | str, caps: Caps | None = None) -> RelaxedProblem:
        return self._variant(objective, self.caps if caps is None else caps)

    # ---- callbacks ------------------------------------------------------------------------------------
    def objective(self, x: np.ndarray) -> float:
        return self._evaluate(x).objective.value

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._evaluate(x).objective.grad.copy()

    def constraints(self, x: np.ndarray) -> np.ndarray:
        return self._evaluate(x).constraints.copy()

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Dense Jacobian ``[m, n]``."""
        rows, cols = self.jacobian_structure()
        out = np.zeros((self.m, self.n))
        out[rows, cols] = self._evaluate(x).jacobian
        return out

    def jacobian_structure(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the Jacobian's structural nonzeros (fixed for the problem).

        A layer's rows touch that layer's variables and the hardware variables its tape depends on;
        the area row touches the hardware; a cap row what its total depends on; a user row the
        variables its Pyomo expression contains.
        """
        if self._structure is None:
            rows, cols, energy_cols = layer_sparsity(self._compile())
            patterns = self._network_patterns(energy_cols)
            if self.user_rows is not None:
                patterns += self.user_rows.patterns
            first = self.rows.per_layer * len(self.network.layers)
            rows = np.concatenate([rows] + [np.full(len(p), first + j) for j, p in enumerate(patterns)])
            cols = np.concatenate([cols] + patterns)
            self._patterns = patterns
            self._structure = (rows.astype(np.int64), cols.astype(np.int64))
        return self._structure

    def _network_patterns(self, energy_cols: np.ndarray) -> list[np.ndarray]:
        lc = np.sort(self.variables.lc)
        depends = {"latency_s": lc, "energy_pJ": energy_cols, "power_mW": np.union1d(energy_cols, lc)}
        out = [np.sort(self.variables.hardware)] if self.rows.area is not None else []
        return out + [depends[c] for c in self.rows.cap]

    def jacobian_values(self, x: np.ndarray) -> np.ndarray:
        """The Jacobian's values at ``x`` in the order of :meth:`jacobian_structure`."""
        return self._evaluate(x).jacobian.copy()

    def _compile(self) -> Compiled:
        if self._compiled is None:
            self._compiled = compile_layers(self.network, self.template, self.structures, self.variables, self.rows)
        return self._compiled

    def hardware_smooth(self, x: np.ndarray) -> tuple[SmoothAlgebra, Smooth, Smooth, dict[int, Smooth]]:
        """The algebra over ``x`` and the hardware variables as :class:`Smooth` numbers."""
        alg = SmoothAlgebra(self.n)
        v = self.variables

        def var(j):
            return Smooth(float(x[j]), np.eye(1, self.n, j).ravel())

        return alg, var(v.mesh_x), var(v.mesh_y), {l: var(j) for l, j in v.size_at.items()}

    def area(self, x: np.ndarray) -> Smooth:
        """On-chip area in mm^2 (:func:`~formulation.relaxed.formulation.area_mm2`)."""
        alg, mx, my, sizes = self.hardware_smooth(x)
        return F.area_mm2(alg, mx, my, sizes, self.template)

    def _evaluate(self, x: np.ndarray) -> _Evaluation:
        """Rows, Jacobian values and the objective at ``x`` in one pass (cached for the last point)."""
        ev = self._evaluation
        if ev is not None and np.array_equal(ev.x, x):
            return ev
        x = np.array(x, dtype=float, copy=True)
        self.jacobian_structure()
        layers = evaluate_layers(self._compile(), x, self.template.base.clock_GHz)
        alg = SmoothAlgebra(self.n)
        totals = {"energy_pJ": layers.energy, "latency_s": layers.latency}
        totals["power_mW"] = power_mW(layers.energy, layers.latency)
        area = self.area(x) if self.area_budget_mm2 is not None else None
        network = F.network_rows(alg, totals, area, self.area_budget_mm2, self.caps)
        values = [layers.rows, [r.value for r in network]]
        jac = [layers.jacobian] + [r.grad[p] for r, p in zip(network, self._patterns)]
        if self.user_rows is not None:
            user_values, user_jac = self.user_rows.evaluate(x)
            values.append(user_values)
            jac.append(user_jac)
        self._evaluation = _Evaluation(x, np.concatenate(values), np.concatenate(jac), layers,
                                       F.objective(alg, totals, self.objective_kind))
        return self._evaluation

    # ---- readers --------------------------------------------------------------------------------------
    def totals(self, x: np.ndarray) -> dict[str, Smooth]:
        """Network energy (pJ), latency (s), power (mW) and area (mm^2) with gradients in ``x``."""
        ev = self._evaluate(x).layers
        return {"energy_pJ": ev.energy, "latency_s": ev.latency, "power_mW": power_mW(ev.energy, ev.latency),
                "area_mm2": self.area(x)}

    def layer_energy_pJ(self, x: np.ndarray) -> np.ndarray:
        """Energy of one run of every layer (pJ) at ``x``; ``totals`` weighs these by the counts."""
        return self._evaluate(x).layers.layer_energy.copy()

    def initial_point(self) -> np.ndarray:
        """Base hardware (clipped to the bounds); every factor at the outermost level; cycles above compute."""
        return self.variables.start.copy()

    def violations(self, x: np.ndarray) -> list[tuple[str, float]]:
        """Constraints violated at ``x``, worst first, as (name, amount)."""
        g = self.constraints(x)
        amount = np.maximum(self.cl - g, 0) + np.maximum(g - self.cu, 0)
        amount = np.nan_to_num(amount, nan=np.inf)
        order = np.argsort(-amount)
        names = self.constraint_names
        return [(names[j], float(amount[j])) for j in order if amount[j] > 1e-6]

    def hardware(self, x: np.ndarray) -> dict:
        """Continuous hardware at ``x``: mesh sides and variable buffer sizes in words."""
        v = self.variables
        return {"mesh_x": math.exp(x[v.mesh_x]), "mesh_y": math.exp(x[v.mesh_y]),
                **{name: math.exp(x[j]) for name, j in v.size.items()}}

    def cycles(self, x: np.ndarray, i: int) -> float:
        """Layer ``i``'s cycle variable at ``x`` (its cycles when tight, see :func:`tight_cycles`)."""
        return math.exp(x[self.variables.lc[i]])

    def tiling(self, x: np.ndarray, i: int) -> dict:
        """Continuous temporal and spatial factors of layer ``i``: ``{level: {"temporal": {d: f}, "spatial": {...}}}``."""
        from formulation.axes import DIMS

        v = self.variables
        return {lv.name: {"temporal": {d.name: math.exp(x[v.xt[i, l, d]]) for d in DIMS},
                          "spatial": {d.name: math.exp(x[v.xs[i, l, d]]) for d in DIMS if self.upper[v.xs[i, l, d]] > 0}}
                for l, lv in enumerate(self.template.base.levels)}

    def rounded_hardware(self, x: np.ndarray) -> Hardware:
        h = self.hardware(x)
        return Hardware(max(1, round(h["mesh_x"])), max(1, round(h["mesh_y"])),
                        tuple((name, max(1, round(h[name]))) for name in self.variables.size))


def tight_cycles(problem: RelaxedProblem, x: np.ndarray) -> np.ndarray:
    """``x`` with every layer's cycle variable at its tight value ``max(compute, bandwidth cycles)``.

    ``lc`` is an epigraph variable: objectives that do not involve latency leave it anywhere above
    the layer's cycles. Its rows are ``ln term - lc <= 0``, so adding the largest of them to ``lc``
    makes the tightest one active. This changes neither feasibility nor energy and gives the
    design's real latency.
    """
    x = np.array(x, dtype=float, copy=True)
    g = problem.constraints(x)
    for i in range(len(problem.network.layers)):
        lc = problem.variables.lc[i]
        x[lc] = min(max(x[lc] + max(g[problem.rows.epigraph(i)]), problem.lower[lc]), problem.upper[lc])
    return x
