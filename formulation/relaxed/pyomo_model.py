"""The continuous co-design relaxation as a Pyomo model: the formulation to read and change.

This is the same NLP as :class:`~formulation.relaxed.problem.RelaxedProblem` (same variables, bounds,
starting point, constraints and objective), written with named index sets so that it can be
printed (``model.pprint()``), extended with constraints, and handed to any Pyomo solver.

Index sets
    ``layers`` (the network's layers, each run ``count[i]`` times), ``levels`` (storage levels,
    outermost first), ``dims`` (the loops ``N K C P Q R S``), ``sized_levels`` (buffers whose size
    is a design variable), ``bounded_levels`` (buffers with a capacity) and ``ports``
    (``(level, read|write)`` pairs with a bandwidth limit).

Variables (natural logs, so every product of factors is a sum)
    ``mesh_x``, ``mesh_y``       PE array sides;
    ``size[l]``                  words of buffer ``l`` (``l`` in ``sized_levels``);
    ``xt[i,l,d]``, ``xs[i,l,d]`` temporal and spatial tiling factor of loop ``d`` of layer ``i`` at
                                 level ``l``, in ``[0, ln D_id]`` (``xs`` is pinned to 0 except at
                                 the fanout into the PE array, for the loops the layer spreads on
                                 the mesh);
    ``lc[i]``                    the layer's cycles (an epigraph variable, see below).

Linear constraints, per layer ``i``
    ``product[i,d]``   ``sum_l xt[i,l,d] + xs[i,l,d] = ln D_id``  (the factors multiply to the bound);
    ``mesh_x_fit[i]``  ``sum_{d in x_dims[i]} xs[i,f,d] <= mesh_x`` at the fanout level ``f``, and
    ``mesh_y_fit[i]``  likewise along Y (the spatial factors fit on the mesh). In
                       ``RelaxedProblem.constraint_names`` these rows are ``mesh_x[i]`` and
                       ``mesh_y[i]``; Pyomo cannot give a constraint the name of a variable.

Nonlinear per-layer terms, from :func:`~formulation.relaxed.sensitivity.relaxed_costs` at the layer's
variables ``z_i = (xt[i], xs[i], ln size)``:
    ``ln_capacity[i,l]``   ln of the words the kept tiles of level ``l`` occupy;
    ``ln_compute[i]``      ln of the compute cycles ``G_i prod_{l,d} exp(xt[i,l,d])``;
    ``ln_bandwidth[i,p]``  ln of words moved through port ``p`` per instance over its bandwidth;
    ``layer_energy_pJ[i]`` the layer's energy, with per-access energies scaled by
                           ``(size / base size)^slope`` (:mod:`formulation.technology`).
They enter through
    ``capacity[i,l]``      ``ln_capacity[i,l] <= size[l]`` (or ``ln`` of a fixed size);
    ``compute[i]``         ``ln_compute[i] <= lc[i]``;
    ``bandwidth[i,l,p]``   ``ln_bandwidth[i,l,p] <= lc[i]``;
so at an optimum ``lc[i] = ln max(compute, bandwidth cycles)``.

Two ways to provide the nonlinear terms (``mode``):

* ``"greybox"``: one :class:`LayerCostModel` block per layer (``costs[i]``), a PyNumero
  ``ExternalGreyBoxModel`` whose inputs are the layer's ``xt``, ``xs`` and the ``size`` variables,
  and whose outputs (``ln_energy``, ``ln_compute``, ``ln_bandwidth[l,p]``, ``ln_capacity[l]``)
  and Jacobian are computed by NumPy (``relaxed_costs`` with :class:`SmoothAlgebra`). Only
  PyNumero-based solvers (``SolverFactory('cyipopt')``) accept these blocks.
* ``"algebraic"``: the same ``relaxed_costs`` code run with :class:`PyomoAlgebra`, which writes
  Pyomo expressions (``exp`` of linear forms, ``+ - * /``, ``sqrt`` for the smoothed positive
  part, ``log``) instead of numbers, so any Pyomo NLP/MINLP solver can read them (``scip_direct``
  translates exactly these; it rejects ``abs``). The log of a monomial is written out, so
  ``compute[i]`` is the linear ``sum_{l,d} xt[i,l,d] + ln G_i <= lc[i]``.

Hardware and totals
    ``area_mm2 = PEs (A_mac + sum_{per-PE l} a_l exp(size[l])) + sum_{shared l} a_l exp(size[l])``
    with ``PEs = exp(mesh_x + mesh_y)`` and ``a_l`` the area per word;
    ``energy_pJ = sum_i count[i] layer_energy_pJ[i]``;
    ``latency_s = sum_i count[i] exp(lc[i]) / clock_hz``; ``power_mW = 1e-9 energy_pJ / latency_s``.
    ``area``: ``ln area_mm2 <= ln budget``; ``cap[c]``: ``ln total_c <= ln cap_c`` for each cap.

Objective (``problem.objective_kind``)
    energy ``ln E``, latency ``ln T``, edp ``ln E + ln T``, power ``ln E - ln T``.
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.pynumero.interfaces.external_grey_box import ExternalGreyBoxBlock, ExternalGreyBoxModel
from pyomo.core.expr.numeric_expr import DivisionExpression, ProductExpression, UnaryFunctionExpression
from scipy.sparse import coo_matrix

from formulation.axes import DIMS, N_DIMS
from formulation.goals import Objective
from formulation.relaxed.problem import RelaxedProblem
from formulation.relaxed.sensitivity import POSITIVE_PART_EPS, relaxed_costs
from formulation.specs.types import SpecError
from formulation.technology import mac_area_mm2, storage_area_mm2

MODES = ("greybox", "algebraic")

# Pyomo constraint components whose rows RelaxedProblem names differently (a Pyomo constraint
# cannot share the name of the variables mesh_x / mesh_y).
RELAXED_ROW_PREFIX = {"mesh_x_fit": "mesh_x", "mesh_y_fit": "mesh_y"}


# ---- the algebra that writes Pyomo expressions -------------------------------------------------
class PyomoAlgebra:
    """:func:`relaxed_costs`' algebra over Pyomo variables: it builds expressions, not numbers.

    ``z`` holds Pyomo variables and plain floats (the log sizes of fixed buffers). Only
    expression types that Pyomo's ``scip_direct`` translates are produced: sums, products,
    divisions, ``exp`` and ``sqrt`` of a square (``abs`` and ``max`` are rejected there).
    """

    def exp_linear(self, coeffs: np.ndarray, z):
        """``exp(coeffs . z)``, with constant terms folded into a factor in front."""
        constant = 0.0
        terms = []
        for c, v in zip(coeffs, z):
            if c == 0:
                continue
            if isinstance(v, (int, float)):
                constant += float(c) * v
            else:
                terms.append(v if c == 1 else float(c) * v)
        if not terms:
            return math.exp(constant)
        power = pyo.exp(pyo.quicksum(terms))
        return power if constant == 0 else math.exp(constant) * power

    def constant(self, value: float) -> float:
        return float(value)

    def positive_part(self, x):
        """``max(0, x)`` smoothed as ``(x + sqrt(x^2 + eps^2)) / 2``, exactly as :class:`SmoothAlgebra`."""
        return (x + pyo.sqrt(x ** 2 + POSITIVE_PART_EPS ** 2)) / 2

    @staticmethod
    def log(x):
        """``ln x``; the log of a product or quotient of exponentials and positive constants is
        written out (``ln(G exp(L)) = ln G + L``), so for example the compute row stays linear."""
        split = _log_of_monomial(x)
        return split if split is not None else pyo.log(x)


def _log_of_monomial(x):
    """``ln x`` as a linear expression when ``x`` is a monomial ``c prod exp(L_j)``, else None."""
    if isinstance(x, (int, float)):
        return math.log(x) if x > 0 else None
    if type(x) is UnaryFunctionExpression and x.getname() == "exp":
        return x.args[0]
    if type(x) in (ProductExpression, DivisionExpression):
        a, b = (_log_of_monomial(arg) for arg in x.args)
        if a is None or b is None:
            return None
        return a + b if type(x) is ProductExpression else a - b
    return None


# ---- the grey-box layer model ------------------------------------------------------------------
def _output_names(problem: RelaxedProblem) -> list[str]:
    """Grey-box outputs of one layer, in the order of its constraint rows."""
    arch = problem.template.base
    names = ["ln_energy", "ln_compute"]
    names += [f"ln_bandwidth[{level},{port}]" for level, port in _ports(problem)]
    names += [f"ln_capacity[{lv.name}]" for lv in arch.levels if lv.size_words is not None]
    return names


def _ports(problem: RelaxedProblem) -> list[tuple[str, str]]:
    """Bandwidth-limited ports ``(level, read|write)`` in RelaxedProblem's row order."""
    out = []
    for lv in problem.template.base.levels:
        for port, bw in (("read", lv.read_bw_words), ("write", lv.write_bw_words)):
            if bw is not None:
                out.append((lv.name, port))
    return out


class LayerCostModel(ExternalGreyBoxModel):
    """Layer ``i``'s nonlinear terms as a grey box: NumPy values and Jacobian from :func:`relaxed_costs`.

    Inputs: ``xt[l,d]``, ``xs[l,d]`` (levels outermost first, dims ``NKCPQRS``) and ``size[l]`` for
    every sized level. Outputs: ``ln_energy`` (pJ), ``ln_compute``, ``ln_bandwidth[l,p]`` (cycles)
    and ``ln_capacity[l]`` (words). The Jacobian of ``ln f`` is ``grad f / f``, returned dense so
    that its sparsity structure never changes between evaluations (PyNumero requires that).
    """

    def __init__(self, problem: RelaxedProblem, i: int):
        self.problem = problem
        self.i = i
        entry = problem.network.layers[i]
        self.layer = entry.layer
        self.arch = problem.template.base
        self.structure = problem.structures[i].structure
        levels = problem.levels
        k = levels * N_DIMS
        # z for relaxed_costs: constants where no variable lives (fixed and unbounded sizes).
        self._z0, where = problem.layer_z(np.zeros(problem.n), i)
        self._z_pos = np.array(list(range(2 * k)) + [2 * k + l for l in problem.size_index], dtype=int)
        assert all(where[p] >= 0 for p in self._z_pos)
        names = [f"{kind}[{lv.name},{d.name}]" for kind in ("xt", "xs") for lv in self.arch.levels for d in DIMS]
        self._inputs = names + [f"size[{self.arch.levels[l].name}]" for l in problem.size_index]
        self._outputs = _output_names(problem)
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

    def z(self, u: np.ndarray) -> np.ndarray:
        """The :func:`relaxed_costs` variable vector for input values ``u``."""
        z = self._z0.copy()
        z[self._z_pos] = u
        return z

    def terms(self, u: np.ndarray) -> list:
        """The :class:`Smooth` terms behind the outputs (before the log), in output order."""
        rc = relaxed_costs(self.layer, self.arch, self.structure, self.z(u), size_dependent_energy=True)
        capacity = [rc.capacity_words[l] for l, lv in enumerate(self.arch.levels) if lv.size_words is not None]
        return [rc.energy_pJ, rc.compute_cycles, *rc.bandwidth_cycles, *capacity]

    def _evaluate(self) -> None:
        if self._cached_u is not None and np.array_equal(self._cached_u, self._u):
            return
        terms = self.terms(self._u)
        self._values = np.array([math.log(t.value) for t in terms])
        self._jac = np.array([t.grad[self._z_pos] / t.value for t in terms])
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


# ---- the model ---------------------------------------------------------------------------------
def build_pyomo_model(problem: RelaxedProblem, mode: str = "greybox") -> pyo.ConcreteModel:
    """The Pyomo model of ``problem`` (see the module docstring for the math), at its initial point."""
    if mode not in MODES:
        raise SpecError(f"mode = {mode!r}: expected one of {', '.join(MODES)}")
    arch = problem.template.base
    network = problem.network
    entries = {entry.layer.name: entry for entry in network.layers}
    fanout = arch.levels[problem.fanout_level].name
    m = pyo.ConcreteModel(name=f"{network.name} on {problem.template.name} ({mode})")
    m.mode = mode  # a plain attribute, not a component

    # ---- index sets ----
    m.layers = pyo.Set(initialize=list(entries), ordered=True, doc="layers of the network")
    m.levels = pyo.Set(initialize=[lv.name for lv in arch.levels], ordered=True, doc="storage levels, outermost first")
    m.dims = pyo.Set(initialize=[d.name for d in DIMS], ordered=True, doc="loop dimensions")
    m.sized_levels = pyo.Set(within=m.levels, ordered=True, doc="levels whose size is a design variable",
                             initialize=[arch.levels[l].name for l in problem.size_index])
    m.bounded_levels = pyo.Set(within=m.levels, ordered=True, doc="levels with a capacity",
                               initialize=[lv.name for lv in arch.levels if lv.size_words is not None])
    m.ports = pyo.Set(dimen=2, ordered=True, initialize=_ports(problem), doc="(level, read|write) with a bandwidth")
    m.x_dims = pyo.Set(m.layers, within=m.dims, doc="loops a layer spreads along the mesh's X axis",
                       initialize={i: [d.name for d in problem.structures[j].x_dims] for j, i in enumerate(entries)})
    m.y_dims = pyo.Set(m.layers, within=m.dims, doc="loops a layer spreads along the mesh's Y axis",
                       initialize={i: [d.name for d in problem.structures[j].y_dims] for j, i in enumerate(entries)})

    # ---- data ----
    m.count = pyo.Param(m.layers, initialize={i: e.count for i, e in entries.items()}, doc="repeats of the layer")
    m.ln_loop_bound = pyo.Param(m.layers, m.dims, doc="ln D_id", initialize={
        (i, d.name): math.log(e.layer.dims[d]) for i, e in entries.items() for d in DIMS})
    m.fixed_ln_size = pyo.Param(m.bounded_levels - m.sized_levels, doc="ln words of a buffer of fixed size",
                                initialize={lv.name: math.log(lv.size_words) for lv in arch.levels
                                            if lv.size_words is not None and lv.name not in m.sized_levels})
    m.clock_hz = pyo.Param(initialize=arch.clock_GHz * 1e9)

    # ---- variables (bounds and starting values are RelaxedProblem's, row by row) ----
    m.mesh_x = pyo.Var(doc="ln PE array width")
    m.mesh_y = pyo.Var(doc="ln PE array height")
    m.size = pyo.Var(m.sized_levels, doc="ln buffer size (words)")
    m.xt = pyo.Var(m.layers, m.levels, m.dims, doc="ln temporal factor")
    m.xs = pyo.Var(m.layers, m.levels, m.dims, doc="ln spatial factor (fanout to the level below)")
    m.lc = pyo.Var(m.layers, doc="ln cycles of one run of the layer")
    for var, lo, hi, x0 in zip(relaxed_variables(m, problem), problem.lower, problem.upper, problem.initial_point()):
        var.setlb(float(lo))
        var.setub(float(hi))
        var.set_value(float(x0), skip_validation=True)

    def ln_size(m, level):
        return m.size[level] if level in m.sized_levels else m.fixed_ln_size[level]

    # ---- linear constraints ----
    @m.Constraint(m.layers, m.dims)
    def product(m, i, d):
        """The temporal and spatial factors of loop d multiply to its bound."""
        return sum(m.xt[i, l, d] + m.xs[i, l, d] for l in m.levels) == m.ln_loop_bound[i, d]

    @m.Constraint(m.layers)
    def mesh_x_fit(m, i):
        """The spatial factors along X fit in the mesh width (RelaxedProblem row mesh_x[i])."""
        return sum(m.xs[i, fanout, d] for d in m.x_dims[i]) <= m.mesh_x

    @m.Constraint(m.layers)
    def mesh_y_fit(m, i):
        """The spatial factors along Y fit in the mesh height (RelaxedProblem row mesh_y[i])."""
        return sum(m.xs[i, fanout, d] for d in m.y_dims[i]) <= m.mesh_y

    # ---- nonlinear per-layer terms ----
    if mode == "greybox":
        _attach_grey_boxes(m, problem)
    else:
        _attach_expressions(m, problem)

    @m.Constraint(m.layers, m.bounded_levels)
    def capacity(m, i, l):
        """The kept tiles fit in the buffer."""
        return m.ln_capacity[i, l] <= ln_size(m, l)

    @m.Constraint(m.layers)
    def compute(m, i):
        """lc bounds the compute cycles."""
        return m.ln_compute[i] <= m.lc[i]

    @m.Constraint(m.layers, m.ports)
    def bandwidth(m, i, l, p):
        """lc bounds the cycles each bandwidth-limited port needs."""
        return m.ln_bandwidth[i, l, p] <= m.lc[i]

    # ---- hardware and network totals ----
    pe_levels = [arch.levels[l].name for l in problem.template.array_levels if arch.levels[l].size_words is not None]
    shared_levels = [name for name in m.bounded_levels if name not in pe_levels]
    per_word = {lv.name: storage_area_mm2(1, lv.word_bits, lv.technology.value)
                for lv in arch.levels if lv.size_words is not None}
    m.pes = pyo.Expression(expr=pyo.exp(m.mesh_x + m.mesh_y), doc="number of PEs")
    m.area_mm2 = pyo.Expression(doc="on-chip area", expr=(
        m.pes * (mac_area_mm2(arch.mac.word_bits) + sum(per_word[l] * pyo.exp(ln_size(m, l)) for l in pe_levels))
        + sum(per_word[l] * pyo.exp(ln_size(m, l)) for l in shared_levels)))
    m.energy_pJ = pyo.Expression(expr=sum(m.count[i] * m.layer_energy_pJ[i] for i in m.layers))
    m.latency_s = pyo.Expression(expr=sum(m.count[i] * pyo.exp(m.lc[i]) for i in m.layers) / m.clock_hz)
    m.power_mW = pyo.Expression(expr=m.energy_pJ / m.latency_s * 1e-9)

    if problem.area_budget_mm2 is not None:
        m.area = pyo.Constraint(expr=pyo.log(m.area_mm2) <= math.log(problem.area_budget_mm2),
                                doc="the hardware fits the area budget")
    caps = {name: getattr(problem.caps, name) for name in ("latency_s", "energy_pJ", "power_mW")
            if getattr(problem.caps, name) is not None}
    if caps:
        totals = {"latency_s": m.latency_s, "energy_pJ": m.energy_pJ, "power_mW": m.power_mW}
        m.cap = pyo.Constraint(list(caps), doc="caps on network totals",
                               rule=lambda m, c: pyo.log(totals[c]) <= math.log(caps[c]))

    ln_e, ln_t = pyo.log(m.energy_pJ), pyo.log(m.latency_s)
    m.objective = pyo.Objective(sense=pyo.minimize, doc=f"ln of the network's {problem.objective_kind.value}", expr={
        Objective.ENERGY: ln_e, Objective.LATENCY: ln_t, Objective.EDP: ln_e + ln_t, Objective.POWER: ln_e - ln_t,
    }[problem.objective_kind])
    return m


def _layer_z(m: pyo.ConcreteModel, problem: RelaxedProblem, i: int) -> list:
    """Layer ``i``'s :func:`relaxed_costs` variables as Pyomo variables (floats where constant)."""
    arch = problem.template.base
    name = problem.network.layers[i].layer.name
    z = [var[name, lv.name, d.name] for var in (m.xt, m.xs) for lv in arch.levels for d in DIMS]
    for lv in arch.levels:
        if lv.name in m.sized_levels:
            z.append(m.size[lv.name])
        else:
            z.append(math.log(lv.size_words) if lv.size_words is not None else 0.0)
    return z


def _attach_expressions(m: pyo.ConcreteModel, problem: RelaxedProblem) -> None:
    """Algebraic mode: the per-layer terms as Pyomo expressions written by ``relaxed_costs``."""
    arch = problem.template.base
    bounded = [l for l, lv in enumerate(arch.levels) if lv.size_words is not None]
    energy, ln_compute, ln_bandwidth, ln_capacity = {}, {}, {}, {}
    for i, entry in enumerate(problem.network.layers):
        name = entry.layer.name
        alg = PyomoAlgebra()
        rc = relaxed_costs(entry.layer, arch, problem.structures[i].structure, _layer_z(m, problem, i),
                           size_dependent_energy=True, algebra=alg)
        energy[name] = rc.energy_pJ
        ln_compute[name] = alg.log(rc.compute_cycles)
        for (level, port), term in zip(_ports(problem), rc.bandwidth_cycles):
            ln_bandwidth[name, level, port] = alg.log(term)
        for l in bounded:
            ln_capacity[name, arch.levels[l].name] = alg.log(rc.capacity_words[l])
    m.layer_energy_pJ = pyo.Expression(m.layers, initialize=energy, doc="energy of one run of the layer")
    m.ln_compute = pyo.Expression(m.layers, initialize=ln_compute, doc="ln compute cycles")
    m.ln_bandwidth = pyo.Expression(m.layers, m.ports, initialize=ln_bandwidth, doc="ln cycles of a port")
    m.ln_capacity = pyo.Expression(m.layers, m.bounded_levels, initialize=ln_capacity, doc="ln words kept")


def _attach_grey_boxes(m: pyo.ConcreteModel, problem: RelaxedProblem) -> None:
    """Grey-box mode: one :class:`LayerCostModel` block per layer, its outputs named as in algebraic mode."""
    arch = problem.template.base
    m.costs = ExternalGreyBoxBlock(m.layers, doc="per-layer costs computed by NumPy")
    for i, entry in enumerate(problem.network.layers):
        name = entry.layer.name
        ex = LayerCostModel(problem, i)
        inputs = [var[name, lv.name, d.name] for var in (m.xt, m.xs) for lv in arch.levels for d in DIMS]
        inputs += [m.size[arch.levels[l].name] for l in problem.size_index]
        m.costs[name].set_external_model(ex, inputs=inputs)

    def out(i, key):
        return m.costs[i].outputs[key]

    m.layer_energy_pJ = pyo.Expression(m.layers, rule=lambda m, i: pyo.exp(out(i, "ln_energy")))
    m.ln_compute = pyo.Expression(m.layers, rule=lambda m, i: out(i, "ln_compute"))
    m.ln_bandwidth = pyo.Expression(m.layers, m.ports, rule=lambda m, i, l, p: out(i, f"ln_bandwidth[{l},{p}]"))
    m.ln_capacity = pyo.Expression(m.layers, m.bounded_levels, rule=lambda m, i, l: out(i, f"ln_capacity[{l}]"))


# ---- between the model and RelaxedProblem's vectors ---------------------------------------------
def relaxed_variables(m: pyo.ConcreteModel, problem: RelaxedProblem) -> list:
    """The model's variables in the order of ``problem.names``."""
    arch = problem.template.base
    out = [m.mesh_x, m.mesh_y]
    out += [m.size[arch.levels[l].name] for l in problem.size_index]
    for entry in problem.network.layers:
        name = entry.layer.name
        for var in (m.xt, m.xs):
            out += [var[name, lv.name, d.name] for lv in arch.levels for d in DIMS]
        out.append(m.lc[name])
    assert len(out) == problem.n
    return out


def relaxed_constraints(m: pyo.ConcreteModel, problem: RelaxedProblem) -> list[tuple[str, object]]:
    """``(RelaxedProblem row name, Pyomo constraint)`` in the order of ``problem.constraint_names``."""
    arch = problem.template.base
    rows = []
    for entry in problem.network.layers:
        i = entry.layer.name
        rows += [(f"product[{i},{d}]", m.product[i, d]) for d in m.dims]
        rows += [(f"mesh_x[{i}]", m.mesh_x_fit[i]), (f"mesh_y[{i}]", m.mesh_y_fit[i])]
        rows += [(f"capacity[{i},{l}]", m.capacity[i, l]) for l in m.bounded_levels]
        rows.append((f"compute[{i}]", m.compute[i]))
        rows += [(f"bandwidth[{i},{l},{p}]", m.bandwidth[i, l, p]) for l, p in m.ports]
    if hasattr(m, "area"):
        rows.append(("area", m.area))
    if hasattr(m, "cap"):
        rows += [(f"cap[{c}]", m.cap[c]) for c in m.cap]
    assert len(rows) == problem.m, (len(rows), problem.m, arch.name)
    return rows


def relaxed_name(constraint) -> str:
    """RelaxedProblem's name of a Pyomo constraint row (``mesh_x_fit[i]`` is ``mesh_x[i]``)."""
    name = constraint.name
    component = constraint.parent_component().name
    return RELAXED_ROW_PREFIX.get(component, component) + name[len(component):]


def solution_vector(m: pyo.ConcreteModel, problem: RelaxedProblem) -> np.ndarray:
    """The model's variable values in RelaxedProblem's order (NaN where a variable has no value)."""
    return np.array([np.nan if v.value is None else float(v.value) for v in relaxed_variables(m, problem)])


def load_point(m: pyo.ConcreteModel, problem: RelaxedProblem, x: np.ndarray) -> None:
    """Set the model's variables to ``x`` (RelaxedProblem's order), e.g. to warm-start a solver.

    In grey-box mode the grey-box outputs are set to their values at ``x`` as well, so the model
    starts consistent.
    """
    x = np.asarray(x, dtype=float)
    if x.shape != (problem.n,):
        raise SpecError(f"x0 has shape {x.shape}: expected ({problem.n},), one value per variable")
    for var, value in zip(relaxed_variables(m, problem), x):
        var.set_value(float(value), skip_validation=True)
    if hasattr(m, "costs"):
        for block in m.costs.values():
            block.get_external_model().finalize_block_construction(block)


def built_model(problem, mode: str, x0=None):
    """The model in ``mode``, started at ``x0`` (clipped to the bounds) when given, and its build time (s)."""
    import time

    start = time.perf_counter()
    model = build_pyomo_model(problem, mode)
    if x0 is not None:
        load_point(model, problem, np.clip(np.asarray(x0, dtype=float), problem.lower, problem.upper))
    return model, time.perf_counter() - start
