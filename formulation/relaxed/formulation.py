"""The network-level relaxation, stated once over an algebra.

Variables (all natural logs; :class:`~formulation.relaxed.layout.VariableLayout`):

* hardware, shared by all layers: ``mesh_x``, ``mesh_y`` (PE array sides) and ``size[LEVEL]``
  for every buffer the template lets vary;
* per layer ``i``: ``xt[i,l,d]`` and ``xs[i,l,d]``, the temporal and spatial tiling factors of
  dimension ``d`` at level ``l`` in ``[0, ln D_id]`` (spatial only at the fanout ``f`` into the PE
  array, along the mesh axis the layer's :class:`LayerStructure` assigns; elsewhere pinned to 0),
  and ``lc[i]`` in ``[0, ln MACs_i + 30]``, the layer's log cycles.

Rows (:class:`~formulation.relaxed.layout.RowLayout`), per layer ``i`` in this order
(:data:`LAYER_BLOCKS`), with ``D_d`` the loop bounds:

* ``product[i,d]``: ``sum_l xt[i,l,d] + xs[i,l,d] = ln D_d`` (the factors multiply to the dimension);
* ``mesh_x[i]``: ``sum_{d on X} xs[i,f,d] - mesh_x <= 0``, and ``mesh_y[i]`` likewise;
* ``capacity[i,l]``: ``ln capacity_l(i) - size_l <= 0`` for every bounded level (the kept tiles,
  input halo included; ``size_l`` is a constant for a level of fixed size);
* ``compute[i]``: ``ln compute_i - lc_i <= 0`` and ``bandwidth[i,l,p]``: ``ln (words / bandwidth)
  - lc_i <= 0`` for every bandwidth-limited port (the epigraph of ``cycles_i = max(compute,
  bandwidth cycles)``);

then for the network ``area``: ``ln area - ln budget <= 0`` and ``cap[c]``: ``ln total_c - ln cap_c
<= 0`` for each cap on latency, energy or power. The per-layer terms are :func:`relaxed_costs`
with size-dependent energies. The totals are ``E = sum_i n_i E_i`` (pJ), ``T = sum_i n_i exp(lc_i)
/ f_clk`` (s) and ``P = E / T`` (mW); ``area = PEs A_mac + sum_l copies_l a_l e^{size_l}`` with
``PEs = e^{mesh_x + mesh_y}``, ``copies_l = PEs`` for a per-PE buffer and 1 for a shared one. The objectives are ``ln E``
(energy), ``ln T`` (latency), ``ln E + ln T`` (EDP) and ``ln E - ln T`` (power). Working in logs
keeps every term of the same scale for the solver.

Everything here runs over an *algebra*: :class:`~formulation.relaxed.sensitivity.SmoothAlgebra`
(values with gradients), :class:`~formulation.relaxed.tape.TraceAlgebra` (a tape the fast
callbacks replay for many layers at once) or :class:`~formulation.relaxed.pyomo_model.PyomoAlgebra`
(the Pyomo model a user reads and edits). A layer's statement works on its *local* variables
``u = [xt (level-major), xs, ln size per level, lc, mesh_x, mesh_y]`` (:func:`local_size`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from formulation.axes import DIMS, N_DIMS, Dim
from formulation.goals import Caps, Objective, clock_hz, power_mW
from formulation.relaxed.layout import RowLayout, VariableLayout, Columns
from formulation.relaxed.sensitivity import Structure, relaxed_costs
from formulation.specs.template import ArchTemplate, log_bounds
from formulation.specs.types import Network
from formulation.technology import mac_area_mm2, storage_area_mm2

DEFAULT_X_DIMS = (Dim.K, Dim.P)
DEFAULT_Y_DIMS = (Dim.C, Dim.Q, Dim.N)
LAYER_BLOCKS = ("product", "mesh_x", "mesh_y", "capacity", "compute", "bandwidth")
CAP_NAMES = ("latency_s", "energy_pJ", "power_mW")
LC_HEADROOM = 30.0   # upper bound of lc[i] above ln MACs_i


@dataclass(frozen=True)
class LayerStructure:
    """The discrete choices of one layer during a continuous solve."""

    structure: Structure
    x_dims: tuple[Dim, ...] = DEFAULT_X_DIMS
    y_dims: tuple[Dim, ...] = DEFAULT_Y_DIMS


def default_structure(template: ArchTemplate) -> LayerStructure:
    """Loop order N,Q,P,K,C,S,R from outermost to innermost at every level, nothing bypassed."""
    levels = len(template.base.levels)
    innermost_first = [int(d) for d in (Dim.R, Dim.S, Dim.C, Dim.K, Dim.P, Dim.Q, Dim.N)]
    order = np.array([innermost_first] * levels)
    keep = np.array([[t in lv.keeps for t in range(3)] for lv in template.base.levels])
    return LayerStructure(Structure(order, keep, np.ones((levels, N_DIMS), dtype=bool)))


def ports(template: ArchTemplate) -> tuple[tuple[str, str], ...]:
    """Bandwidth-limited ports ``(level, read|write)``, outermost level first, read before write."""
    return tuple((lv.name, port) for lv in template.base.levels
                 for port, bw in (("read", lv.read_bw_words), ("write", lv.write_bw_words)) if bw is not None)


def bounded_levels(template: ArchTemplate) -> list[int]:
    return [l for l, lv in enumerate(template.base.levels) if lv.size_words is not None]


# ---- the blocks --------------------------------------------------------------------------------------
def declare_variables(network: Network, template: ArchTemplate,
                      structures: list[LayerStructure]) -> VariableLayout:
    """The variable blocks with their bounds and the default start (module docstring).

    Start: the base hardware (clipped to the bounds); every factor at the outermost level; cycles
    one e-fold above the MACs.
    """
    arch = template.base
    levels, fanout = len(arch.levels), template.array_fanout_level
    bounds = log_bounds(template)
    hw = template.base_hardware()
    cols = Columns()
    start = []

    def add(name, lower, upper, x0):
        start.append(min(max(x0, lower), upper))
        return cols.add(name, lower, upper)

    mesh_x = add("mesh_x", *bounds["mesh_x"], math.log(hw.mesh_x))
    mesh_y = add("mesh_y", *bounds["mesh_y"], math.log(hw.mesh_y))
    size = {}
    for level in template.variable_levels:
        name = arch.levels[level].name
        size[name] = add(f"size[{name}]", *bounds[name], math.log(hw.size_of(name)))
    xt = np.zeros((len(network.layers), levels, N_DIMS), dtype=np.int64)
    xs = np.zeros_like(xt)
    lc = np.zeros(len(network.layers), dtype=np.int64)
    for i, entry in enumerate(network.layers):
        st, layer = structures[i], entry.layer
        for kind, table in (("xt", xt), ("xs", xs)):
            for l in range(levels):
                for d in DIMS:
                    top = math.log(layer.dims[d])
                    free = kind == "xt" or (l == fanout and (d in st.x_dims or d in st.y_dims))
                    x0 = top if kind == "xt" and l == 0 else 0.0
                    table[i, l, d] = add(f"{kind}[{layer.name},{arch.levels[l].name},{d.name}]", 0.0,
                                         top if free else 0.0, x0)
        lc[i] = add(f"lc[{layer.name}]", 0.0, math.log(layer.macs) + LC_HEADROOM, math.log(layer.macs) + 1.0)
    return VariableLayout(mesh_x, mesh_y, size, {arch.level_index(k): v for k, v in size.items()}, xt, xs, lc,
                          tuple(cols.names), np.array(cols.lower), np.array(cols.upper), np.array(start))


def declare_rows(network: Network, template: ArchTemplate, area_budget_mm2: float | None,
                 caps: Caps) -> RowLayout:
    """The row blocks with their bounds, per layer in :data:`LAYER_BLOCKS` order, then area and caps."""
    arch = template.base
    n_layers, levels = len(network.layers), len(arch.levels)
    port_list = ports(template)
    rows = Columns()
    product = np.zeros((n_layers, N_DIMS), dtype=np.int64)
    mesh = np.zeros((2, n_layers), dtype=np.int64)
    capacity = -np.ones((n_layers, levels), dtype=np.int64)
    compute = np.zeros(n_layers, dtype=np.int64)
    bandwidth = np.zeros((n_layers, len(port_list)), dtype=np.int64)
    inf = math.inf
    for i, entry in enumerate(network.layers):
        name = entry.layer.name
        for d in DIMS:
            value = math.log(entry.layer.dims[d])
            product[i, d] = rows.add(f"product[{name},{d.name}]", value, value)
        for axis, label in enumerate(("mesh_x", "mesh_y")):
            mesh[axis, i] = rows.add(f"{label}[{name}]", -inf, 0.0)
        for l in bounded_levels(template):
            capacity[i, l] = rows.add(f"capacity[{name},{arch.levels[l].name}]", -inf, 0.0)
        compute[i] = rows.add(f"compute[{name}]", -inf, 0.0)
        for p, (level, port) in enumerate(port_list):
            bandwidth[i, p] = rows.add(f"bandwidth[{name},{level},{port}]", -inf, 0.0)
    per_layer = len(rows.names) // max(n_layers, 1)
    area = rows.add("area", -inf, 0.0) if area_budget_mm2 is not None else None
    cap = {c: rows.add(f"cap[{c}]", -inf, 0.0) for c in CAP_NAMES if getattr(caps, c) is not None}
    return RowLayout(product, mesh[0], mesh[1], capacity, compute, bandwidth, port_list, area, cap, per_layer,
                     tuple(rows.names), np.array(rows.lower), np.array(rows.upper))


# ---- one layer ---------------------------------------------------------------------------------------
def local_size(levels: int) -> int:
    """Length of a layer's local vector ``u`` (module docstring)."""
    return 2 * levels * N_DIMS + levels + 3


@dataclass(frozen=True)
class LayerLogTerms:
    """The logs of a layer's nonlinear terms (what the grey-box Pyomo model computes outside Pyomo)."""

    energy_pJ: object               # the layer's energy itself (not its log)
    capacity: dict[int, object]     # bounded level -> ln words kept
    compute: object                 # ln compute cycles
    bandwidth: list                 # per port: ln cycles


def layer_log_terms(alg, u, layer, arch, structure: Structure) -> LayerLogTerms:
    """:func:`relaxed_costs` with size-dependent energies, at the first entries of ``u``, and its logs."""
    rc = relaxed_costs(layer, arch, structure, u, size_dependent_energy=True, algebra=alg)
    return LayerLogTerms(rc.energy_pJ,
                         {l: alg.log(rc.capacity_words[l]) for l, lv in enumerate(arch.levels)
                          if lv.size_words is not None},
                         alg.log(rc.compute_cycles), [alg.log(b) for b in rc.bandwidth_cycles])


def layer_rows(v: list, terms: LayerLogTerms, levels: int, fanout: int, st: LayerStructure) -> dict[str, list]:
    """The bodies of one layer's rows by block (:data:`LAYER_BLOCKS`), over its local variables ``v``."""
    k = levels * N_DIMS
    ls, lc, mesh_x, mesh_y = v[2 * k:2 * k + levels], v[-3], v[-2], v[-1]

    def xt(l, d):
        return v[l * N_DIMS + d]

    def xs(l, d):
        return v[k + l * N_DIMS + d]

    product = []
    for d in DIMS:
        body = xt(0, d) + xs(0, d)
        for l in range(1, levels):
            body = body + xt(l, d) + xs(l, d)
        product.append(body)
    def spread(dims):  # the spatial factors along one mesh axis
        return sum((xs(fanout, d) for d in dims[1:]), xs(fanout, dims[0])) if dims else 0.0

    return {
        "product": product,
        "mesh_x": [spread(st.x_dims) - mesh_x],
        "mesh_y": [spread(st.y_dims) - mesh_y],
        "capacity": [ln - ls[l] for l, ln in terms.capacity.items()],
        "compute": [terms.compute - lc],
        "bandwidth": [ln - lc for ln in terms.bandwidth],
    }


def layer_statement(alg, u, layer, template: ArchTemplate, st: LayerStructure,
                    terms: LayerLogTerms | None = None) -> tuple[object, list]:
    """One layer's energy and its row bodies in row order, over the local vector ``u``."""
    levels = len(template.base.levels)
    v = alg.variables(u)
    if terms is None:
        terms = layer_log_terms(alg, u, layer, template.base, st.structure)
    blocks = layer_rows(v, terms, levels, template.array_fanout_level, st)
    return terms.energy_pJ, [body for name in LAYER_BLOCKS for body in blocks[name]]


# ---- the network -------------------------------------------------------------------------------------
def area_mm2(alg, mesh_x, mesh_y, ln_size: dict[int, object], template: ArchTemplate):
    """On-chip area (module docstring); ``ln_size[l]`` for every sized level, fixed sizes from the template."""
    arch = template.base
    pes = alg.exp(mesh_x + mesh_y)
    total = pes * mac_area_mm2(arch.mac.word_bits)
    for l in bounded_levels(template):
        lv = arch.levels[l]
        words = alg.exp(ln_size[l]) if l in ln_size else float(lv.size_words)
        copies = pes if l in template.array_levels else 1.0
        total = total + copies * words * storage_area_mm2(1, lv.word_bits, lv.technology.value)
    return total


def network_totals(layer_energy: list, lc: list, counts: list, clock_GHz: float, alg) -> dict[str, object]:
    """``energy_pJ``, ``latency_s`` and ``power_mW`` of the network from its layers' energies and log cycles."""
    energy = sum((n * e for n, e in zip(counts[1:], layer_energy[1:])), counts[0] * layer_energy[0])
    cycles = sum((n * alg.exp(c) for n, c in zip(counts[1:], lc[1:])), counts[0] * alg.exp(lc[0]))
    latency = cycles / clock_hz(clock_GHz)
    return {"energy_pJ": energy, "latency_s": latency, "power_mW": power_mW(energy, latency)}


def network_rows(alg, totals: dict, area, area_budget_mm2: float | None, caps: Caps) -> list:
    """The bodies of the area row (when there is a budget) and the cap rows, in row order."""
    rows = []
    if area_budget_mm2 is not None:
        rows.append(alg.log(area) - math.log(area_budget_mm2))
    for c in CAP_NAMES:
        bound = getattr(caps, c)
        if bound is not None:
            rows.append(alg.log(totals[c]) - math.log(bound))
    return rows


def objective(alg, totals: dict, kind: Objective):
    """``ln E``, ``ln T``, ``ln E + ln T`` or ``ln E - ln T``."""
    ln_e, ln_t = alg.log(totals["energy_pJ"]), alg.log(totals["latency_s"])
    return {Objective.ENERGY: ln_e, Objective.LATENCY: ln_t, Objective.EDP: ln_e + ln_t,
            Objective.POWER: ln_e - ln_t}[kind]
