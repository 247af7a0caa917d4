"""The continuous relaxation of network-wide hardware/dataflow co-design, in NumPy form.

Variables (all natural logs), in the order of :attr:`RelaxedProblem.names`:

* hardware, shared by all layers: ``mesh_x``, ``mesh_y`` (PE array sides) and ``size[LEVEL]``
  for every buffer the template lets vary;
* per layer ``i``: ``xt[i,l,d]`` and ``xs[i,l,d]``, the temporal and spatial tiling factors of
  dimension ``d`` at level ``l`` (spatial only at the fanout into the PE array, along the mesh
  axis the layer's :class:`LayerStructure` assigns), and ``lc[i]``, the layer's log cycles.

Constraints, per layer ``i`` (``D_d`` the loop bounds, ``n_i`` the layer's repeat count):

* ``sum_l xt[i,l,d] + xs[i,l,d] = ln D_d`` (the factors multiply to the dimension);
* ``sum_{d on X} xs[i,f,d] <= mesh_x`` and likewise for Y (the spatial factors fit the mesh);
* ``ln capacity_l(i) <= size_l`` for every bounded level (the kept tiles, input halo included);
* ``ln compute_i <= lc_i`` and ``ln (words_k / bandwidth_k) <= lc_i`` for every bandwidth-limited
  port (the epigraph of ``cycles_i = max(compute, bandwidth cycles)``);

and for the hardware ``ln area <= ln budget`` (:mod:`formulation.technology`), plus optional caps
on latency, energy or power. With ``E = sum_i n_i E_i`` (pJ, :func:`relaxed_costs` with
size-dependent energies) and ``T = sum_i n_i exp(lc_i) / f_clk`` (s), the objectives are
``ln E`` (energy), ``ln T`` (latency), ``ln E + ln T`` (EDP) and ``ln E - ln T`` (power).
Working in logs keeps every term of the same scale for the solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from formulation.axes import DIMS, N_DIMS, Dim
from formulation.sensitivity import Smooth, Structure, relaxed_costs
from formulation.specs import Network, SpecError
from formulation.technology import mac_area_mm2, storage_area_mm2
from formulation.template import ArchTemplate, Hardware, log_bounds


class Objective(str, Enum):
    LATENCY = "latency"
    ENERGY = "energy"
    EDP = "edp"
    POWER = "power"


DEFAULT_X_DIMS = (Dim.K, Dim.P)
DEFAULT_Y_DIMS = (Dim.C, Dim.Q, Dim.N)


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


@dataclass(frozen=True)
class Caps:
    latency_s: float | None = None
    energy_pJ: float | None = None
    power_mW: float | None = None


@dataclass
class _Cache:
    x: np.ndarray | None = None
    costs: list = field(default_factory=list)


class RelaxedProblem:
    """Objective, constraints and their derivatives for IPOPT-style solvers (see module docstring)."""

    def __init__(self, network: Network, template: ArchTemplate, objective: Objective | str = Objective.EDP,
                 area_budget_mm2: float | None = None, caps: Caps = Caps(),
                 structures: list[LayerStructure] | None = None):
        self.network = network
        self.template = template
        self.objective_kind = Objective(objective)
        self.area_budget_mm2 = area_budget_mm2
        self.caps = caps
        self.structures = structures or [default_structure(template) for _ in network.layers]
        if len(self.structures) != len(network.layers):
            raise SpecError(f"structures = {len(self.structures)}: need one per layer ({len(network.layers)})")
        arch = template.base
        self.levels = len(arch.levels)
        self.fanout_level = template.array_fanout_level
        bounds = log_bounds(template)
        names = ["mesh_x", "mesh_y"]
        lower = [bounds["mesh_x"][0], bounds["mesh_y"][0]]
        upper = [bounds["mesh_x"][1], bounds["mesh_y"][1]]
        self.size_index: dict[int, int] = {}
        for level in template.variable_levels:
            name = arch.levels[level].name
            self.size_index[level] = len(names)
            names.append(f"size[{name}]")
            lower.append(bounds[name][0])
            upper.append(bounds[name][1])
        self.layer_offset = []
        k = self.levels * N_DIMS
        for i, entry in enumerate(network.layers):
            st = self.structures[i]
            self.layer_offset.append(len(names))
            dims = entry.layer.dims
            for kind in ("xt", "xs"):
                for l in range(self.levels):
                    for d in DIMS:
                        names.append(f"{kind}[{entry.layer.name},{arch.levels[l].name},{d.name}]")
                        top = math.log(dims[d])
                        spatial_ok = l == self.fanout_level and (d in st.x_dims or d in st.y_dims)
                        free = kind == "xt" or spatial_ok
                        lower.append(0.0)
                        upper.append(top if free else 0.0)
            names.append(f"lc[{entry.layer.name}]")
            lower.append(0.0)
            upper.append(math.log(entry.layer.macs) + 30.0)
        assert all(len(names) - off >= 2 * k + 1 for off in self.layer_offset)
        self.names = names
        self.lower = np.array(lower)
        self.upper = np.array(upper)
        self.n = len(names)
        self._build_constraint_layout()
        self._cache = _Cache()

    # ---- layout -------------------------------------------------------------------------------
    def _build_constraint_layout(self) -> None:
        arch = self.template.base
        names, cl, cu = [], [], []
        for i, entry in enumerate(self.network.layers):
            lname = entry.layer.name
            for d in DIMS:
                names.append(f"product[{lname},{d.name}]")
                value = math.log(entry.layer.dims[d])
                cl.append(value)
                cu.append(value)
            names += [f"mesh_x[{lname}]", f"mesh_y[{lname}]"]
            cl += [-np.inf, -np.inf]
            cu += [0.0, 0.0]
            for l, lv in enumerate(arch.levels):
                if lv.size_words is not None:
                    names.append(f"capacity[{lname},{lv.name}]")
                    cl.append(-np.inf)
                    cu.append(0.0)
            names.append(f"compute[{lname}]")
            cl.append(-np.inf)
            cu.append(0.0)
            for lv in arch.levels:
                for port, bw in (("read", lv.read_bw_words), ("write", lv.write_bw_words)):
                    if bw is not None:
                        names.append(f"bandwidth[{lname},{lv.name},{port}]")
                        cl.append(-np.inf)
                        cu.append(0.0)
        if self.area_budget_mm2 is not None:
            names.append("area")
            cl.append(-np.inf)
            cu.append(0.0)
        for cap in ("latency_s", "energy_pJ", "power_mW"):
            if getattr(self.caps, cap) is not None:
                names.append(f"cap[{cap}]")
                cl.append(-np.inf)
                cu.append(0.0)
        self.constraint_names = names
        self.cl = np.array(cl)
        self.cu = np.array(cu)
        self.m = len(names)

    def with_caps(self, caps: Caps) -> RelaxedProblem:
        """The same problem with other caps (the ε-constraint sweep changes only these)."""
        return RelaxedProblem(self.network, self.template, self.objective_kind, self.area_budget_mm2, caps,
                              self.structures)

    def with_objective(self, objective: Objective | str, caps: Caps | None = None) -> RelaxedProblem:
        return RelaxedProblem(self.network, self.template, objective, self.area_budget_mm2,
                              self.caps if caps is None else caps, self.structures)

    # ---- evaluation ---------------------------------------------------------------------------
    def layer_z(self, x: np.ndarray, i: int) -> tuple[np.ndarray, list[int]]:
        """The layer's variable vector for :func:`relaxed_costs` and where each entry lives in ``x`` (-1: constant)."""
        arch = self.template.base
        k = self.levels * N_DIMS
        off = self.layer_offset[i]
        z = np.zeros(2 * k + self.levels)
        where = list(range(off, off + 2 * k)) + [-1] * self.levels
        z[:2 * k] = x[off:off + 2 * k]
        for l, lv in enumerate(arch.levels):
            if l in self.size_index:
                z[2 * k + l] = x[self.size_index[l]]
                where[2 * k + l] = self.size_index[l]
            elif lv.size_words is not None:
                z[2 * k + l] = math.log(lv.size_words)
        return z, where

    def _costs(self, x: np.ndarray) -> list:
        if self._cache.x is None or not np.array_equal(self._cache.x, x):
            costs = []
            for i, entry in enumerate(self.network.layers):
                z, where = self.layer_z(x, i)
                rc = relaxed_costs(entry.layer, self.template.base, self.structures[i].structure, z,
                                   size_dependent_energy=True)
                costs.append((rc, where))
            self._cache = _Cache(np.array(x, copy=True), costs)
        return self._cache.costs

    def _lift(self, smooth: Smooth, where: list[int]) -> np.ndarray:
        """Scatter a layer gradient into the full variable space."""
        g = np.zeros(self.n)
        for j, w in enumerate(where):
            if w >= 0:
                g[w] += smooth.grad[j]
        return g

    def totals(self, x: np.ndarray) -> dict[str, Smooth]:
        """Network energy (pJ), latency (s), power (mW) and area (mm^2) with gradients in ``x``."""
        clock_hz = self.template.base.clock_GHz * 1e9
        energy = Smooth(0.0, np.zeros(self.n))
        latency = Smooth(0.0, np.zeros(self.n))
        off_lc = [off + 2 * self.levels * N_DIMS for off in self.layer_offset]
        for i, ((rc, where), entry) in enumerate(zip(self._costs(x), self.network.layers)):
            energy = energy + Smooth(rc.energy_pJ.value, self._lift(rc.energy_pJ, where)) * entry.count
            cyc = math.exp(x[off_lc[i]])
            g = np.zeros(self.n)
            g[off_lc[i]] = cyc
            latency = latency + Smooth(cyc, g) * (entry.count / clock_hz)
        power = energy / latency * 1e-9  # pJ/s -> mW
        return {"energy_pJ": energy, "latency_s": latency, "power_mW": power, "area_mm2": self.area(x)}

    def area(self, x: np.ndarray) -> Smooth:
        """On-chip area: PEs x (per-PE buffers + MAC) plus the shared buffers."""
        arch = self.template.base
        pe_coef = np.zeros(self.n)
        pe_coef[0] = pe_coef[1] = 1.0
        pes = Smooth(math.exp(x[0] + x[1]), math.exp(x[0] + x[1]) * pe_coef)
        total = pes * mac_area_mm2(arch.mac.word_bits)
        for l, lv in enumerate(arch.levels):
            if lv.size_words is None:
                continue
            per_word = storage_area_mm2(1, lv.word_bits, lv.technology.value)
            if l in self.size_index:
                c = np.zeros(self.n)
                c[self.size_index[l]] = 1.0
                size = Smooth(math.exp(x[self.size_index[l]]), math.exp(x[self.size_index[l]]) * c)
            else:
                size = Smooth(float(lv.size_words), np.zeros(self.n))
            copies = pes if l in self.template.array_levels else 1.0
            total = total + copies * size * per_word
        return total

    def _objective_smooth(self, x: np.ndarray) -> Smooth:
        t = self.totals(x)
        e, lat = _log(t["energy_pJ"]), _log(t["latency_s"])
        return {Objective.ENERGY: e, Objective.LATENCY: lat, Objective.EDP: e + lat,
                Objective.POWER: e - lat}[self.objective_kind]

    def objective(self, x: np.ndarray) -> float:
        return self._objective_smooth(x).value

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._objective_smooth(x).grad

    def _constraint_rows(self, x: np.ndarray) -> list[Smooth]:
        arch = self.template.base
        rows: list[Smooth] = []
        k = self.levels * N_DIMS
        for i, ((rc, where), entry) in enumerate(zip(self._costs(x), self.network.layers)):
            off = self.layer_offset[i]
            st = self.structures[i]
            for d in DIMS:
                g = np.zeros(self.n)
                for l in range(self.levels):
                    g[off + l * N_DIMS + d] = 1.0
                    g[off + k + l * N_DIMS + d] = 1.0
                rows.append(Smooth(float(g @ x), g))
            for axis, dims in ((0, st.x_dims), (1, st.y_dims)):
                g = np.zeros(self.n)
                for d in dims:
                    g[off + k + self.fanout_level * N_DIMS + d] = 1.0
                g[axis] -= 1.0
                rows.append(Smooth(float(g @ x), g))
            size_log = {l: (x[self.size_index[l]], self.size_index[l]) for l in self.size_index}
            for l, lv in enumerate(arch.levels):
                if lv.size_words is None:
                    continue
                cap = _log(Smooth(rc.capacity_words[l].value, self._lift(rc.capacity_words[l], where)))
                if l in size_log:
                    value, index = size_log[l]
                    g = np.zeros(self.n)
                    g[index] = 1.0
                    cap = cap - Smooth(value, g)
                else:
                    cap = cap - math.log(lv.size_words)
                rows.append(cap)
            lc = np.zeros(self.n)
            lc[off + 2 * k] = 1.0
            lc_smooth = Smooth(x[off + 2 * k], lc)
            for term in (rc.compute_cycles, *rc.bandwidth_cycles):
                rows.append(_log(Smooth(term.value, self._lift(term, where))) - lc_smooth)
        if self.area_budget_mm2 is not None:
            rows.append(_log(self.area(x)) - math.log(self.area_budget_mm2))
        totals = None
        for cap, key in (("latency_s", "latency_s"), ("energy_pJ", "energy_pJ"), ("power_mW", "power_mW")):
            bound = getattr(self.caps, cap)
            if bound is not None:
                totals = totals or self.totals(x)
                rows.append(_log(totals[key]) - math.log(bound))
        assert len(rows) == self.m
        return rows

    def constraints(self, x: np.ndarray) -> np.ndarray:
        return np.array([r.value for r in self._constraint_rows(x)])

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Dense Jacobian ``[m, n]``."""
        return np.array([r.grad for r in self._constraint_rows(x)])

    # ---- points -------------------------------------------------------------------------------
    def initial_point(self) -> np.ndarray:
        """Base hardware (clipped to the bounds); every factor at the outermost level; cycles = compute."""
        x = np.zeros(self.n)
        hw = self.template.base_hardware()
        x[0], x[1] = math.log(hw.mesh_x), math.log(hw.mesh_y)
        for l, index in self.size_index.items():
            x[index] = math.log(hw.size_of(self.template.base.levels[l].name))
        k = self.levels * N_DIMS
        for i, entry in enumerate(self.network.layers):
            off = self.layer_offset[i]
            for d in DIMS:
                x[off + d] = math.log(entry.layer.dims[d])
            x[off + 2 * k] = math.log(entry.layer.macs) + 1.0
        return np.clip(x, self.lower, self.upper)

    def violations(self, x: np.ndarray) -> list[tuple[str, float]]:
        """Constraints violated at ``x``, worst first, as (name, amount)."""
        g = self.constraints(x)
        amount = np.maximum(self.cl - g, 0) + np.maximum(g - self.cu, 0)
        amount = np.nan_to_num(amount, nan=np.inf)
        order = np.argsort(-amount)
        return [(self.constraint_names[j], float(amount[j])) for j in order if amount[j] > 1e-6]

    def hardware(self, x: np.ndarray) -> dict:
        """Continuous hardware at ``x``: mesh sides and variable buffer sizes in words."""
        out = {"mesh_x": math.exp(x[0]), "mesh_y": math.exp(x[1])}
        for l, index in self.size_index.items():
            out[self.template.base.levels[l].name] = math.exp(x[index])
        return out

    def tiling(self, x: np.ndarray, i: int) -> dict:
        """Continuous temporal and spatial factors of layer ``i``: ``{level: {"temporal": {d: f}, "spatial": {...}}}``."""
        k = self.levels * N_DIMS
        off = self.layer_offset[i]
        out = {}
        for l, lv in enumerate(self.template.base.levels):
            out[lv.name] = {
                "temporal": {d.name: math.exp(x[off + l * N_DIMS + d]) for d in DIMS},
                "spatial": {d.name: math.exp(x[off + k + l * N_DIMS + d]) for d in DIMS
                            if self.upper[off + k + l * N_DIMS + d] > 0},
            }
        return out

    def rounded_hardware(self, x: np.ndarray) -> Hardware:
        h = self.hardware(x)
        return Hardware(max(1, round(h["mesh_x"])), max(1, round(h["mesh_y"])),
                        tuple((self.template.base.levels[l].name, max(1, round(h[self.template.base.levels[l].name])))
                              for l in self.size_index))


def _log(s: Smooth) -> Smooth:
    return Smooth(math.log(s.value), s.grad / s.value)
