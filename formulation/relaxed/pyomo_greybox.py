"""A layer's nonlinear terms as a PyNumero grey box: NumPy values and Jacobian, for ``pyomo-ipopt``.

:class:`LayerCostModel` computes :func:`~formulation.relaxed.formulation.layer_log_terms` (the
same statement the other renderings run) with :class:`~formulation.relaxed.sensitivity.SmoothAlgebra`.
Only PyNumero-based solvers (``SolverFactory('cyipopt')``) accept these blocks.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.pynumero.interfaces.external_grey_box import ExternalGreyBoxBlock, ExternalGreyBoxModel
from scipy.sparse import coo_matrix

from formulation.axes import DIMS
from formulation.relaxed.compiled import constant_slots, local_index
from formulation.relaxed.formulation import LayerLogTerms, layer_log_terms, local_size
from formulation.relaxed.sensitivity import SmoothAlgebra


def output_names(problem) -> list[str]:
    """Grey-box outputs of one layer."""
    arch = problem.template.base
    names = ["ln_energy", "ln_compute"]
    names += [f"ln_bandwidth[{level},{port}]" for level, port in problem.rows.ports]
    names += [f"ln_capacity[{lv.name}]" for lv in arch.levels if lv.size_words is not None]
    return names


class LayerCostModel(ExternalGreyBoxModel):
    """Layer ``i``'s nonlinear terms as a grey box.

    Inputs: ``xt[l,d]``, ``xs[l,d]`` (levels outermost first, dims ``NKCPQRS``) and ``size[l]`` for
    every sized level. Outputs: ``ln_energy`` (pJ), ``ln_compute``, ``ln_bandwidth[l,p]`` (cycles)
    and ``ln_capacity[l]`` (words). The Jacobian of ``ln f`` is ``grad f / f``, returned dense so
    that its sparsity structure never changes between evaluations (PyNumero requires that).
    """

    def __init__(self, problem, i: int):
        self.problem = problem
        self.i = i
        self.layer = problem.network.layers[i].layer
        self.arch = problem.template.base
        self.structure = problem.structures[i].structure
        v = problem.variables
        zconst, slot = constant_slots(v, problem.template)
        where = local_index(v, problem.template, i, slot)
        self._u0 = np.concatenate([np.zeros(v.n), zconst])[where]  # constants where no input lives
        inputs = np.concatenate([v.xt[i].ravel(), v.xs[i].ravel(), list(v.size_at.values())])
        self._u_pos = np.array([int(np.flatnonzero(where == j)[0]) for j in inputs], dtype=int)
        names = [f"{kind}[{lv.name},{d.name}]" for kind in ("xt", "xs") for lv in self.arch.levels for d in DIMS]
        self._inputs = names + [f"size[{name}]" for name in v.size]
        self._outputs = output_names(problem)
        self._u = np.zeros(len(self._inputs))
        self._cached_u = None
        self._values = self._jac = None
        rows, cols = np.indices((len(self._outputs), len(self._inputs)))
        self._rows, self._cols = rows.ravel(), cols.ravel()

    def input_names(self):
        return self._inputs

    def output_names(self):
        return self._outputs

    def equality_constraint_names(self):
        return []

    def set_input_values(self, input_values):
        self._u = np.asarray(input_values, dtype=float).copy()

    def finalize_block_construction(self, pyomo_block):
        """Start the outputs at their values for the inputs' current values."""
        self.set_input_values([v.value for v in pyomo_block.inputs.values()])
        for var, value in zip(pyomo_block.outputs.values(), self.evaluate_outputs()):
            var.set_value(float(value))

    def terms(self, u: np.ndarray) -> list:
        """The :class:`Smooth` outputs at input values ``u``, in output order (gradients over the local vector)."""
        local = self._u0.copy()
        local[self._u_pos] = u
        alg = SmoothAlgebra(local_size(len(self.arch.levels)))
        t = layer_log_terms(alg, local, self.layer, self.arch, self.structure)
        return [alg.log(t.energy_pJ), t.compute, *t.bandwidth, *t.capacity.values()]

    def _evaluate(self) -> None:
        if self._cached_u is not None and np.array_equal(self._cached_u, self._u):
            return
        terms = self.terms(self._u)
        self._values = np.array([t.value for t in terms])
        self._jac = np.array([t.grad[self._u_pos] for t in terms])
        self._cached_u = self._u.copy()

    def evaluate_equality_constraints(self):
        return None

    def evaluate_jacobian_equality_constraints(self):
        return None

    def evaluate_outputs(self):
        self._evaluate()
        return self._values.copy()

    def evaluate_jacobian_outputs(self):
        self._evaluate()
        return coo_matrix((self._jac.ravel(), (self._rows, self._cols)),
                          shape=(len(self._outputs), len(self._inputs)))


def grey_box_terms(m: pyo.ConcreteModel, problem) -> dict[str, LayerLogTerms]:
    """One :class:`LayerCostModel` block per layer (``m.costs[i]``); the layers' terms are its outputs."""
    arch = problem.template.base
    m.costs = ExternalGreyBoxBlock(m.layers, doc="per-layer costs computed by NumPy")
    out = {}
    for i, entry in enumerate(problem.network.layers):
        name = entry.layer.name
        inputs = [var[name, lv.name, d.name] for var in (m.xt, m.xs) for lv in arch.levels for d in DIMS]
        inputs += [m.size[level] for level in problem.variables.size]
        m.costs[name].set_external_model(LayerCostModel(problem, i), inputs=inputs)
        outputs = m.costs[name].outputs
        out[name] = LayerLogTerms(
            pyo.exp(outputs["ln_energy"]),
            {l: outputs[f"ln_capacity[{lv.name}]"] for l, lv in enumerate(arch.levels) if lv.size_words is not None},
            outputs["ln_compute"], [outputs[f"ln_bandwidth[{level},{port}]"] for level, port in problem.rows.ports])
    return out
