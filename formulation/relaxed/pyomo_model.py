"""The relaxation as a Pyomo model: the formulation to read, change and hand to any Pyomo solver.

The model renders :mod:`formulation.relaxed.formulation` (the same statement the NumPy callbacks
of :class:`~formulation.relaxed.problem.RelaxedProblem` are traced from) with
:class:`PyomoAlgebra`, which writes Pyomo expressions instead of numbers. Print it with
``model.pprint()``; add constraints through ``RelaxedProblem(..., model_hooks=[f])`` or
``codesign optimize --model-hook FILE:FUNCTION`` (:mod:`formulation.relaxed.hooks`), so that every
backend, the NumPy one included, solves the changed model.

Index sets
    ``layers`` (the network's layers, each run ``count[i]`` times), ``levels`` (storage levels,
    outermost first), ``dims`` (the loops ``N K C P Q R S``), ``sized_levels`` (buffers whose size
    is a design variable), ``bounded_levels`` (buffers with a capacity) and ``ports``
    (``(level, read|write)`` pairs with a bandwidth limit).

Variables (natural logs; bounds and starting values from the formulation)
    ``mesh_x``, ``mesh_y`` PE array sides; ``size[l]`` words of buffer ``l``; ``xt[i,l,d]``,
    ``xs[i,l,d]`` temporal and spatial factors; ``lc[i]`` the layer's cycles (an epigraph variable).

Per-layer terms (named expressions)
    ``layer_energy_pJ[i]``, ``ln_compute[i]``, ``ln_bandwidth[i,l,p]``, ``ln_capacity[i,l]``.

Constraints (one component per row block of the formulation)
    ``product[i,d]``, ``mesh_x_fit[i]`` and ``mesh_y_fit[i]`` (the rows ``mesh_x[i]``, ``mesh_y[i]``
    of the formulation: Pyomo cannot give a constraint the name of a variable), ``capacity[i,l]``,
    ``compute[i]``, ``bandwidth[i,l,p]``, ``area`` and ``cap[c]``.

Totals and objective
    ``area_mm2``, ``energy_pJ``, ``latency_s``, ``power_mW``; ``objective`` (minimized).

Two ways to provide the nonlinear per-layer terms (``mode``):

* ``"greybox"``: one :class:`~formulation.relaxed.pyomo_greybox.LayerCostModel` block per layer
  (``costs[i]``) whose outputs and Jacobian NumPy computes; only PyNumero-based solvers
  (``SolverFactory('cyipopt')``) accept these blocks.
* ``"algebraic"``: Pyomo expressions (``exp`` of linear forms, ``+ - * /``, ``sqrt`` for the
  smoothed positive part, ``log``) that any Pyomo NLP/MINLP solver reads (``scip_direct``
  translates exactly these). The log of a monomial is written out, so ``compute[i]`` is linear.
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import DivisionExpression, ProductExpression, UnaryFunctionExpression

from formulation.axes import DIMS, Dim
from formulation.relaxed import formulation as F
from formulation.relaxed.problem import RelaxedProblem
from formulation.relaxed.sensitivity import POSITIVE_PART_EPS
from formulation.specs.types import SpecError

MODES = ("greybox", "algebraic")


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

    def variables(self, values) -> list:
        """The variables are the Pyomo variables themselves (and floats for constants)."""
        return list(values)

    @staticmethod
    def exp(x):
        return math.exp(x) if isinstance(x, (int, float)) else pyo.exp(x)

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


def build_pyomo_model(problem: RelaxedProblem, mode: str = "greybox", hooks: bool = True) -> pyo.ConcreteModel:
    """The Pyomo model of ``problem`` (module docstring) at its initial point, then its ``model_hooks`` applied."""
    if mode not in MODES:
        raise SpecError(f"mode = {mode!r}: expected one of {', '.join(MODES)}")
    arch, network, template = problem.template.base, problem.network, problem.template
    entries = {entry.layer.name: entry for entry in network.layers}
    m = pyo.ConcreteModel(name=f"{network.name} on {template.name} ({mode})")
    m.mode = mode  # a plain attribute, not a component
    m.layers = pyo.Set(initialize=list(entries), ordered=True, doc="layers of the network")
    m.levels = pyo.Set(initialize=[lv.name for lv in arch.levels], ordered=True, doc="storage levels, outermost first")
    m.dims = pyo.Set(initialize=[d.name for d in DIMS], ordered=True, doc="loop dimensions")
    m.sized_levels = pyo.Set(within=m.levels, ordered=True, initialize=list(problem.variables.size),
                             doc="levels whose size is a design variable")
    m.bounded_levels = pyo.Set(within=m.levels, ordered=True, doc="levels with a capacity",
                               initialize=[lv.name for lv in arch.levels if lv.size_words is not None])
    m.ports = pyo.Set(dimen=2, ordered=True, initialize=problem.rows.ports, doc="(level, read|write) with a bandwidth")
    m.count = pyo.Param(m.layers, initialize={i: e.count for i, e in entries.items()}, doc="repeats of the layer")

    m.mesh_x = pyo.Var(doc="ln PE array width")
    m.mesh_y = pyo.Var(doc="ln PE array height")
    m.size = pyo.Var(m.sized_levels, doc="ln buffer size (words)")
    m.xt = pyo.Var(m.layers, m.levels, m.dims, doc="ln temporal factor")
    m.xs = pyo.Var(m.layers, m.levels, m.dims, doc="ln spatial factor (fanout to the level below)")
    m.lc = pyo.Var(m.layers, doc="ln cycles of one run of the layer")
    v = problem.variables
    for var, lo, hi, x0 in zip(relaxed_variables(m, problem), v.lower, v.upper, v.start):
        var.setlb(float(lo))
        var.setub(float(hi))
        var.set_value(float(x0), skip_validation=True)

    alg = PyomoAlgebra()
    terms = _layer_terms(m, problem, mode, alg)
    bodies = {}
    for i, (name, entry) in enumerate(entries.items()):
        energy, rows = F.layer_statement(alg, _local_vector(m, problem, name), entry.layer, template,
                                         problem.structures[i], terms[name])
        bodies.update(zip(problem.rows.layer_rows(i), rows))
    sizes = {arch.level_index(name): m.size[name] for name in m.sized_levels}
    m.area_mm2 = pyo.Expression(expr=F.area_mm2(alg, m.mesh_x, m.mesh_y, sizes, template), doc="on-chip area")
    totals = F.network_totals([m.layer_energy_pJ[i] for i in m.layers], [m.lc[i] for i in m.layers],
                              [m.count[i] for i in m.layers], arch.clock_GHz, alg)
    for key, expr in totals.items():
        setattr(m, key, pyo.Expression(expr=expr))
    first = problem.rows.per_layer * len(entries)
    network = F.network_rows(alg, {k: getattr(m, k) for k in totals}, m.area_mm2, problem.area_budget_mm2,
                             problem.caps)
    bodies.update(zip(range(first, first + len(network)), network))
    _add_constraints(m, problem, bodies)
    m.objective = pyo.Objective(sense=pyo.minimize, doc=f"ln of the network's {problem.objective_kind.value}",
                                expr=F.objective(alg, {k: getattr(m, k) for k in totals}, problem.objective_kind))
    if hooks:
        from formulation.relaxed.hooks import apply_hooks

        apply_hooks(m, problem)
    return m


def _layer_terms(m: pyo.ConcreteModel, problem: RelaxedProblem, mode: str, alg) -> dict[str, F.LayerLogTerms]:
    """Every layer's nonlinear terms as named expressions (from grey boxes or written out)."""
    arch = problem.template.base
    if mode == "greybox":
        from formulation.relaxed.pyomo_greybox import grey_box_terms

        raw = grey_box_terms(m, problem)
    else:
        raw = {e.layer.name: F.layer_log_terms(alg, _local_vector(m, problem, e.layer.name), e.layer, arch,
                                               problem.structures[i].structure)
               for i, e in enumerate(problem.network.layers)}
    bounded = [l for l, lv in enumerate(arch.levels) if lv.size_words is not None]
    m.layer_energy_pJ = pyo.Expression(m.layers, initialize={i: t.energy_pJ for i, t in raw.items()},
                                       doc="energy of one run of the layer")
    m.ln_compute = pyo.Expression(m.layers, initialize={i: t.compute for i, t in raw.items()}, doc="ln compute cycles")
    m.ln_bandwidth = pyo.Expression(m.layers, m.ports, doc="ln cycles of a port", initialize={
        (i, *port): b for i, t in raw.items() for port, b in zip(problem.rows.ports, t.bandwidth)})
    m.ln_capacity = pyo.Expression(m.layers, m.bounded_levels, doc="ln words kept", initialize={
        (i, arch.levels[l].name): t.capacity[l] for i, t in raw.items() for l in bounded})
    return {i: F.LayerLogTerms(m.layer_energy_pJ[i], {l: m.ln_capacity[i, arch.levels[l].name] for l in bounded},
                               m.ln_compute[i], [m.ln_bandwidth[i, level, port] for level, port in problem.rows.ports])
            for i in raw}


def _local_vector(m: pyo.ConcreteModel, problem: RelaxedProblem, name: str) -> list:
    """Layer ``name``'s local vector (:func:`~formulation.relaxed.formulation.local_size`): Pyomo
    variables, and floats for the log sizes of fixed levels."""
    arch = problem.template.base
    u = [var[name, lv.name, d.name] for var in (m.xt, m.xs) for lv in arch.levels for d in DIMS]
    for lv in arch.levels:
        if lv.name in m.sized_levels:
            u.append(m.size[lv.name])
        else:
            u.append(math.log(lv.size_words) if lv.size_words is not None else 0.0)
    return u + [m.lc[name], m.mesh_x, m.mesh_y]


def _add_constraints(m: pyo.ConcreteModel, problem: RelaxedProblem, bodies: dict[int, object]) -> None:
    """One constraint component per row block, each row ``cl <= body <= cu`` from the formulation."""
    rows, arch = problem.rows, problem.template.base
    layers = list(m.layers)
    cl, cu = rows.cl, rows.cu

    def row(j):
        if cl[j] == cu[j]:
            return bodies[j] == float(cl[j])
        return bodies[j] <= float(cu[j])

    m.product = pyo.Constraint(m.layers, m.dims, rule=lambda m, i, d: row(rows.product[layers.index(i), Dim[d]]),
                               doc="the temporal and spatial factors of loop d multiply to its bound")
    m.mesh_x_fit = pyo.Constraint(m.layers, rule=lambda m, i: row(rows.mesh_x[layers.index(i)]),
                                  doc="the spatial factors along X fit in the mesh width (row mesh_x[i])")
    m.mesh_y_fit = pyo.Constraint(m.layers, rule=lambda m, i: row(rows.mesh_y[layers.index(i)]),
                                  doc="the spatial factors along Y fit in the mesh height (row mesh_y[i])")
    m.capacity = pyo.Constraint(m.layers, m.bounded_levels, doc="the kept tiles fit in the buffer",
                                rule=lambda m, i, l: row(rows.capacity[layers.index(i), arch.level_index(l)]))
    m.compute = pyo.Constraint(m.layers, rule=lambda m, i: row(rows.compute[layers.index(i)]),
                               doc="lc bounds the compute cycles")
    port_list = list(rows.ports)
    m.bandwidth = pyo.Constraint(m.layers, m.ports, doc="lc bounds the cycles of each bandwidth-limited port",
                                 rule=lambda m, i, l, p: row(rows.bandwidth[layers.index(i), port_list.index((l, p))]))
    if rows.area is not None:
        m.area = pyo.Constraint(expr=row(rows.area), doc="the hardware fits the area budget")
    if rows.cap:
        m.cap = pyo.Constraint(list(rows.cap), rule=lambda m, c: row(rows.cap[c]), doc="caps on network totals")

# ---- between the model and RelaxedProblem's vectors ---------------------------------------------
PYOMO_COMPONENT = {"mesh_x": "mesh_x_fit", "mesh_y": "mesh_y_fit"}   # row block -> constraint component


def relaxed_variables(m: pyo.ConcreteModel, problem: RelaxedProblem) -> list:
    """The model's variables in the order of ``problem.names`` (placed by the variable blocks)."""
    arch, v = problem.template.base, problem.variables
    out = [None] * v.n
    out[v.mesh_x], out[v.mesh_y] = m.mesh_x, m.mesh_y
    for name, j in v.size.items():
        out[j] = m.size[name]
    for i, entry in enumerate(problem.network.layers):
        name = entry.layer.name
        for block, var in ((v.xt, m.xt), (v.xs, m.xs)):
            for l, lv in enumerate(arch.levels):
                for d in DIMS:
                    out[block[i, l, d]] = var[name, lv.name, d.name]
        out[v.lc[i]] = m.lc[name]
    return out


def relaxed_constraints(m: pyo.ConcreteModel, problem: RelaxedProblem) -> list[tuple[str, object]]:
    """``(row name, Pyomo constraint)`` for the formulation's rows in row order, placed by the row blocks
    (the component of row block ``b`` is ``PYOMO_COMPONENT.get(b, b)``)."""
    rows, arch = problem.rows, problem.template.base
    out = [None] * rows.m
    for i, entry in enumerate(problem.network.layers):
        name = entry.layer.name
        for d in DIMS:
            out[rows.product[i, d]] = m.product[name, d.name]
        out[rows.mesh_x[i]], out[rows.mesh_y[i]] = m.mesh_x_fit[name], m.mesh_y_fit[name]
        for l, lv in enumerate(arch.levels):
            if rows.capacity[i, l] >= 0:
                out[rows.capacity[i, l]] = m.capacity[name, lv.name]
        out[rows.compute[i]] = m.compute[name]
        for p, (level, port) in enumerate(rows.ports):
            out[rows.bandwidth[i, p]] = m.bandwidth[name, level, port]
    if rows.area is not None:
        out[rows.area] = m.area
    for c, j in rows.cap.items():
        out[j] = m.cap[c]
    return list(zip(rows.names, out))


def relaxed_name(constraint) -> str:
    """The formulation's name of a Pyomo constraint row (``mesh_x_fit[i]`` is ``mesh_x[i]``)."""
    name = constraint.name
    component = constraint.parent_component().name
    block = {c: b for b, c in PYOMO_COMPONENT.items()}.get(component, component)
    return block + name[len(component):]


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
