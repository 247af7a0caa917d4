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

Evaluation: every layer's :func:`relaxed_costs` is traced once into a tape of arithmetic
operations, and layers with the same tape are evaluated together with vectorized NumPy (the same
formulas as :class:`Smooth`, to rounding). The Jacobian is sparse with a fixed structure
(:meth:`RelaxedProblem.jacobian_structure`, :meth:`RelaxedProblem.jacobian_values`); the dense
:meth:`RelaxedProblem.jacobian` is built from it. ``_constraint_rows`` / ``_reference_totals``
keep the direct (slow) path as the reference the tests compare against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from formulation.axes import DIMS, N_DIMS, Dim
from formulation.goals import Caps, Objective
from formulation.relaxed.sensitivity import POSITIVE_PART_EPS, Smooth, Structure, relaxed_costs
from formulation.specs.types import Network, SpecError
from formulation.technology import mac_area_mm2, storage_area_mm2
from formulation.specs.template import ArchTemplate, Hardware, log_bounds


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


@dataclass
class _Cache:
    x: np.ndarray | None = None
    costs: list = field(default_factory=list)


@dataclass
class _Evaluation:
    """Everything the callbacks need at one point (the compiled path, :meth:`RelaxedProblem._evaluate`)."""

    x: np.ndarray
    constraints: np.ndarray
    jacobian: np.ndarray        # values in the order of jacobian_structure()
    energy: Smooth
    latency: Smooth
    layer_energy: np.ndarray    # pJ per instance of each layer


# ---- compiled evaluation --------------------------------------------------------------------------
# relaxed_costs is written once, over an algebra. Running it with _TraceAlgebra records its
# arithmetic as a list of operations (a tape) per layer; layers whose tapes differ only in their
# constants are then evaluated together, one NumPy operation per tape entry over all of them, with
# the same value and gradient formulas as Smooth (forward mode). That replaces some 7,000 Smooth
# objects per evaluation of ResNet-18 by a few hundred vectorized operations.

_BINARY = ("add", "sub", "mul", "div")
_WITH_CONST = ("addc", "rsubc", "mulc", "divc")


class _Sym:
    """A traced value: an index into its tape."""

    __slots__ = ("tape", "id")

    def __init__(self, tape: _TraceAlgebra, index: int):
        self.tape = tape
        self.id = index

    def _binary(self, op: str, other, const_op: str, const_of=float):
        if isinstance(other, _Sym):
            return self.tape.op(op, self.id, other.id)
        return self.tape.op(const_op, self.id, const=const_of(other))

    def __add__(self, other):
        return self._binary("add", other, "addc")

    __radd__ = __add__

    def __sub__(self, other):
        return self._binary("sub", other, "addc", lambda c: -float(c))

    def __rsub__(self, other):
        return self.tape.op("rsubc", self.id, const=float(other))

    def __mul__(self, other):
        return self._binary("mul", other, "mulc")

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self._binary("div", other, "divc")


class _TraceAlgebra:
    """Records relaxed_costs' arithmetic. Operations on constants are folded into constants."""

    def __init__(self):
        self.ops: list[tuple] = []      # (op, a, b, coeffs)
        self.consts: list[float | None] = []

    def op(self, op: str, a: int = -1, b: int = -1, coeffs=None, const=None) -> _Sym:
        ops = self.ops
        if op in _BINARY and ops[a][0] == "const" and ops[b][0] == "const":
            return self.constant(_apply_value(op, self.consts[a], self.consts[b]))
        if op in _WITH_CONST and ops[a][0] == "const":
            return self.constant(_apply_value(op, self.consts[a], const))
        self.ops.append((op, a, b, coeffs))
        self.consts.append(const)
        return _Sym(self, len(self.ops) - 1)

    def exp_linear(self, coeffs: np.ndarray, z) -> _Sym:
        return self.op("exp", coeffs=np.array(coeffs, dtype=float))

    def constant(self, value: float) -> _Sym:
        self.ops.append(("const", -1, -1, None))
        self.consts.append(float(value))
        return _Sym(self, len(self.ops) - 1)

    def positive_part(self, x: _Sym) -> _Sym:
        return self.op("pos", x.id)


def _apply_value(op: str, a: float, b: float) -> float:
    """Constant folding, with Smooth's arithmetic."""
    if op in ("add", "addc"):
        return a + b
    if op == "sub":
        return a + (-1.0) * b
    if op == "rsubc":
        return (-1.0) * a + b
    if op in ("mul", "mulc"):
        return a * b
    return a / b


class _Program:
    """The tape of one group of layers with identical operations, over their stacked constants."""

    def __init__(self, traces: list[_TraceAlgebra], outputs: list[list[int]]):
        first = traces[0]
        keep = np.zeros(len(first.ops), dtype=bool)
        stack = list(outputs[0])
        while stack:  # only what the outputs need
            j = stack.pop()
            if keep[j]:
                continue
            keep[j] = True
            op, a, b, _ = first.ops[j]
            stack += [k for k in (a, b) if k >= 0]
        self.index = np.flatnonzero(keep)
        renumber = -np.ones(len(first.ops), dtype=int)
        renumber[self.index] = np.arange(len(self.index))
        self.ops = []
        self.consts = []
        exp_rows = []
        for j in self.index:
            op, a, b, coeffs = first.ops[j]
            if op == "exp":
                exp_rows.append(coeffs)
                self.ops.append((op, len(exp_rows) - 1, -1))
            else:
                self.ops.append((op, renumber[a] if a >= 0 else -1, renumber[b] if b >= 0 else -1))
            if op == "const" or op in _WITH_CONST:
                self.consts.append(np.array([t.consts[j] for t in traces]))
            else:
                self.consts.append(None)
        self.exp_coeffs = np.array(exp_rows)
        self.outputs = [renumber[o] for o in outputs[0]]
        # structural dependence of every output on the variables (exponents' nonzero coefficients)
        deps = []
        for op, a, b in self.ops:
            if op == "exp":
                deps.append(self.exp_coeffs[a] != 0)
            elif op == "const":
                deps.append(np.zeros(self.exp_coeffs.shape[1], dtype=bool))
            else:
                deps.append(deps[a] | deps[b] if b >= 0 else deps[a].copy())
        self.output_deps = [deps[o] for o in self.outputs]

        self._run = self._generate()

    def _generate(self):
        """Straight-line NumPy code for the tape (which gradients are zero is known here, not at run time)."""
        env = {"np": np, "EC": self.exp_coeffs, "ECT": np.ascontiguousarray(self.exp_coeffs.T),
               "EPS2": POSITIVE_PART_EPS ** 2}
        lines = ["def run(Z):", "    ev = np.exp(Z @ ECT)", "    eg = ev[:, :, None] * EC[None]"]
        has_grad = []
        for j, (op, a, b) in enumerate(self.ops):
            v, g = f"v{j}", f"g{j}"
            ga = has_grad[a] if a >= 0 and op != "exp" else False
            gb = has_grad[b] if b >= 0 else False
            if self.consts[j] is not None:
                env[f"c{j}"] = self.consts[j]
                env[f"cc{j}"] = self.consts[j][:, None]
            if op == "exp":
                lines += [f"    {v} = ev[:, {a}]", f"    {g} = eg[:, {a}]"]
                has_grad.append(True)
                continue
            if op == "const":
                lines.append(f"    {v} = c{j}")
                has_grad.append(False)
                continue
            va, vb, gra, grb = f"v{a}", f"v{b}", f"g{a}", f"g{b}"
            if op == "add":
                value = f"{va} + {vb}"
                grad = f"{gra} + {grb}" if ga and gb else gra if ga else grb if gb else None
            elif op == "sub":
                value = f"{va} + (-1.0) * {vb}"
                grad = (f"{gra} + (-1.0) * {grb}" if ga and gb else gra if ga else f"(-1.0) * {grb}" if gb
                        else None)
            elif op in ("mul", "div"):
                value = f"{va} * {vb}" if op == "mul" else f"{va} / {vb}"
                other = va if op == "mul" else f"(-{va})"
                terms = ([f"{gra} * {vb}[:, None]"] if ga else []) + ([f"{grb} * {other}[:, None]"] if gb else [])
                grad = " + ".join(terms) or None
                if grad is not None and op == "div":
                    grad = f"({grad}) / ({vb} ** 2)[:, None]"
            elif op == "addc":
                value, grad = f"{va} + c{j}", gra if ga else None
            elif op == "rsubc":
                value, grad = f"(-1.0) * {va} + c{j}", f"(-1.0) * {gra}" if ga else None
            elif op == "mulc":
                value, grad = f"{va} * c{j}", f"{gra} * cc{j}" if ga else None
            elif op == "divc":
                value, grad = f"{va} / c{j}", f"{gra} / cc{j}" if ga else None
            else:  # pos: (x + sqrt(x^2 + eps^2)) / 2
                lines.append(f"    r{j} = np.sqrt({va} ** 2 + EPS2)")
                value = f"({va} + r{j}) / 2"
                grad = f"{gra} * ((1 + {va} / r{j}) / 2)[:, None]" if ga else None
            lines.append(f"    {v} = {value}")
            if grad is not None:
                lines.append(f"    {g} = {grad}")
            has_grad.append(grad is not None)
        outs = ", ".join(f"(v{o}, {'g%d' % o if has_grad[o] else 'None'})" for o in self.outputs)
        lines.append(f"    return [{outs}]")
        exec(compile("\n".join(lines), "<relaxation tape>", "exec"), env)
        return env["run"]

    def run(self, Z: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Values ``[B]`` and gradients ``[B, nz]`` (None when constant) of the outputs at the rows of ``Z``."""
        return [(np.broadcast_to(v, Z.shape[:1]), g) for v, g in self._run(Z)]


@dataclass(frozen=True)
class _Group:
    layers: np.ndarray        # layer indices sharing one tape
    program: _Program
    rr: np.ndarray            # Jacobian pattern of a layer's nonlinear rows: row within the layer,
    cc: np.ndarray            # and local column (0..nz-1: the layer's z, nz: its lc)
    energy_local: np.ndarray  # local columns the layer energy depends on


@dataclass(frozen=True)
class _Compiled:
    zconst: np.ndarray        # constant entries of z (log sizes of fixed levels), appended to x
    ext_index: np.ndarray     # [layers, nz + 1] index of every local variable in [x, zconst]
    extra: np.ndarray         # per nonlinear row: the local column it subtracts (size or lc)
    per_layer: int            # constraint rows per layer
    groups: list
    lin_rows: np.ndarray
    lin_cols: np.ndarray
    lin_vals: np.ndarray
    counts: np.ndarray


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
        self._compiled: _Compiled | None = None   # built on first evaluation, shared by with_caps/with_objective
        self._structure: tuple[np.ndarray, np.ndarray] | None = None
        self._evaluation: _Evaluation | None = None

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
        out = RelaxedProblem(self.network, self.template, self.objective_kind, self.area_budget_mm2, caps,
                             self.structures)
        out._compiled = self._compiled
        return out

    def with_objective(self, objective: Objective | str, caps: Caps | None = None) -> RelaxedProblem:
        out = RelaxedProblem(self.network, self.template, objective, self.area_budget_mm2,
                             self.caps if caps is None else caps, self.structures)
        out._compiled = self._compiled
        return out

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
        ev = self._evaluate(x)
        power = ev.energy / ev.latency * 1e-9  # pJ/s -> mW
        return {"energy_pJ": ev.energy, "latency_s": ev.latency, "power_mW": power, "area_mm2": self.area(x)}

    def _reference_totals(self, x: np.ndarray) -> dict[str, Smooth]:
        """:meth:`totals` through :func:`relaxed_costs` and :class:`Smooth` directly (slow; for tests)."""
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

    def layer_energy_pJ(self, x: np.ndarray) -> np.ndarray:
        """Energy of one instance of every layer (pJ) at ``x``; ``totals`` weighs these by the counts."""
        return self._evaluate(x).layer_energy.copy()

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
        ev = self._evaluate(x)
        e, lat = _log(ev.energy), _log(ev.latency)
        return {Objective.ENERGY: e, Objective.LATENCY: lat, Objective.EDP: e + lat,
                Objective.POWER: e - lat}[self.objective_kind]

    def objective(self, x: np.ndarray) -> float:
        return self._objective_smooth(x).value

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self._objective_smooth(x).grad

    def _constraint_rows(self, x: np.ndarray) -> list[Smooth]:
        """Every constraint row as a :class:`Smooth` over ``x``, through :func:`relaxed_costs` directly.

        The reference for the compiled path (slow; used by the tests).
        """
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
                totals = totals or self._reference_totals(x)
                rows.append(_log(totals[key]) - math.log(bound))
        assert len(rows) == self.m
        return rows

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

        The product and mesh rows are linear; a layer's capacity, compute and bandwidth rows touch
        only that layer's variables and the hardware variables they depend on; the area row touches
        the hardware; the caps touch what the totals depend on.
        """
        return self._sparsity()

    def jacobian_values(self, x: np.ndarray) -> np.ndarray:
        """The Jacobian's values at ``x`` in the order of :meth:`jacobian_structure`."""
        return self._evaluate(x).jacobian.copy()

    # ---- compiled evaluation ----------------------------------------------------------------------
    def _compile(self) -> _Compiled:
        """Trace every layer's :func:`relaxed_costs` once and group the layers with identical tapes."""
        if self._compiled is not None:
            return self._compiled
        arch = self.template.base
        k = self.levels * N_DIMS
        nz = 2 * k + self.levels
        zconst = [0.0]  # unbounded levels: no size term (layer_z leaves them at 0)
        const_slot = {}
        for l, lv in enumerate(arch.levels):
            if l not in self.size_index and lv.size_words is not None:
                const_slot[l] = self.n + len(zconst)
                zconst.append(math.log(lv.size_words))
        bounded = [l for l, lv in enumerate(arch.levels) if lv.size_words is not None]
        n_layers = len(self.network.layers)
        ext_index = np.zeros((n_layers, nz + 1), dtype=np.int64)   # local variable -> index into [x, zconst]
        for i in range(n_layers):
            off = self.layer_offset[i]
            ext_index[i, :2 * k] = np.arange(off, off + 2 * k)
            for l, lv in enumerate(arch.levels):
                ext_index[i, 2 * k + l] = (self.size_index[l] if l in self.size_index
                                           else const_slot.get(l, self.n))
            ext_index[i, nz] = off + 2 * k  # lc
        # the nonlinear rows of a layer, in the layout's order: capacity, compute, bandwidth
        extra = [2 * k + l for l in bounded] + [nz]
        n_bw = sum((lv.read_bw_words is not None) + (lv.write_bw_words is not None) for lv in arch.levels)
        extra += [nz] * n_bw
        per_layer = N_DIMS + 2 + len(extra)
        groups: dict[tuple, list[int]] = {}
        traces = []
        traced: dict[tuple, tuple] = {}  # layers of the same shape and structure share one trace
        for i, entry in enumerate(self.network.layers):
            st = self.structures[i].structure
            key = (replace(entry.layer, name=""), st.order.tobytes(), st.keep.tobytes(), st.present.tobytes(),
                   st.order.shape)
            if key not in traced:
                alg = _TraceAlgebra()
                rc = relaxed_costs(entry.layer, arch, st, None, size_dependent_energy=True, algebra=alg)
                outputs = ([rc.energy_pJ] + [rc.capacity_words[l] for l in bounded] + [rc.compute_cycles]
                           + list(rc.bandwidth_cycles))
                ids = [o.id for o in outputs]
                signature = (tuple((op, a, b, None if c is None else c.tobytes()) for op, a, b, c in alg.ops),
                             tuple(ids))
                traced[key] = (alg, ids, signature)
            alg, ids, signature = traced[key]
            traces.append((alg, ids))
            groups.setdefault(signature, []).append(i)
        is_var = ext_index < self.n
        compiled_groups = []
        for members in groups.values():
            program = _Program([traces[i][0] for i in members], [traces[i][1] for i in members])
            members = np.array(members)
            rr, cc = [], []
            for r, col in enumerate(extra):
                dep = np.append(program.output_deps[1 + r], False)
                dep[col] = True
                for c in np.flatnonzero(dep & is_var[members[0]]):
                    rr.append(r)
                    cc.append(c)
            rr, cc = np.array(rr, dtype=np.int64), np.array(cc, dtype=np.int64)
            energy_local = np.flatnonzero(np.append(program.output_deps[0], False) & is_var[members[0]])
            compiled_groups.append(_Group(members, program, rr, cc, energy_local))
        # linear rows (product, mesh): constant coefficients
        lin_rows, lin_cols, lin_vals = [], [], []
        for i in range(n_layers):
            off = self.layer_offset[i]
            base = i * per_layer
            st = self.structures[i]
            for d in DIMS:
                for l in range(self.levels):
                    for col in (off + l * N_DIMS + d, off + k + l * N_DIMS + d):
                        lin_rows.append(base + int(d))
                        lin_cols.append(col)
                        lin_vals.append(1.0)
            for axis, dims in ((0, st.x_dims), (1, st.y_dims)):
                for d in dims:
                    lin_rows.append(base + N_DIMS + axis)
                    lin_cols.append(off + k + self.fanout_level * N_DIMS + d)
                    lin_vals.append(1.0)
                lin_rows.append(base + N_DIMS + axis)
                lin_cols.append(axis)
                lin_vals.append(-1.0)
        counts = np.array([float(e.count) for e in self.network.layers])
        self._compiled = _Compiled(np.array(zconst), ext_index, np.array(extra), per_layer,
                                   compiled_groups, np.array(lin_rows), np.array(lin_cols), np.array(lin_vals),
                                   counts)
        return self._compiled

    def _sparsity(self) -> tuple[np.ndarray, np.ndarray]:
        if self._structure is not None:
            return self._structure
        c = self._compile()
        rows, cols = [c.lin_rows], [c.lin_cols]
        energy_cols = set()
        for g in c.groups:
            base = g.layers * c.per_layer + N_DIMS + 2
            rows.append((base[:, None] + g.rr[None, :]).ravel())
            cols.append(c.ext_index[g.layers][:, g.cc].ravel())
            energy_cols.update(c.ext_index[g.layers][:, g.energy_local].ravel().tolist())
        lc_cols = c.ext_index[:, -1].tolist()
        row = len(self.network.layers) * c.per_layer
        extra_cols = []
        if self.area_budget_mm2 is not None:
            extra_cols.append(np.array([0, 1] + sorted(self.size_index.values())))
        for cap, pattern in (("latency_s", set(lc_cols)), ("energy_pJ", energy_cols),
                             ("power_mW", energy_cols | set(lc_cols))):
            if getattr(self.caps, cap) is not None:
                extra_cols.append(np.array(sorted(pattern)))
        for pattern in extra_cols:
            rows.append(np.full(len(pattern), row))
            cols.append(pattern)
            row += 1
        assert row == self.m
        self._extra_cols = extra_cols
        self._structure = (np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64))
        return self._structure

    def _evaluate(self, x: np.ndarray) -> _Evaluation:
        """Constraints, Jacobian values and the totals at ``x`` in one pass (cached for the last point)."""
        ev = self._evaluation
        if ev is not None and np.array_equal(ev.x, x):
            return ev
        x = np.array(x, dtype=float, copy=True)
        c = self._compile()
        self._sparsity()
        xe = np.concatenate([x, c.zconst])
        g = np.bincount(c.lin_rows, weights=c.lin_vals * x[c.lin_cols], minlength=self.m)
        jac = [c.lin_vals]
        e_vals, e_idx, e_w = [], [], []
        layer_energy = np.empty(len(self.network.layers))
        n_rows = len(c.extra)
        for grp in c.groups:
            ext = c.ext_index[grp.layers]
            Z = xe[ext[:, :-1]]
            outs = grp.program.run(Z)
            batch = len(grp.layers)
            values = np.empty((batch, n_rows))
            grads = np.zeros((batch, n_rows, Z.shape[1] + 1))
            for r in range(n_rows):
                v, gr = outs[1 + r]
                values[:, r] = v
                if gr is not None:
                    grads[:, r, :-1] = gr / v[:, None]
            grads[:, np.arange(n_rows), c.extra] -= 1.0
            rows = grp.layers[:, None] * c.per_layer + N_DIMS + 2 + np.arange(n_rows)[None, :]
            g[rows] = np.log(values) - xe[ext[:, c.extra]]
            jac.append(grads[:, grp.rr, grp.cc].ravel())
            ev_v, ev_g = outs[0]
            counts = c.counts[grp.layers]
            e_vals.append(ev_v * counts)
            layer_energy[grp.layers] = ev_v
            if ev_g is not None and len(grp.energy_local):
                e_idx.append(ext[:, grp.energy_local].ravel())
                e_w.append((ev_g[:, grp.energy_local] * counts[:, None]).ravel())
        energy_value = float(np.sum(np.concatenate(e_vals)))
        energy_grad = (np.bincount(np.concatenate(e_idx), weights=np.concatenate(e_w), minlength=self.n)
                       if e_idx else np.zeros(self.n))
        clock_hz = self.template.base.clock_GHz * 1e9
        lc = c.ext_index[:, -1]
        cyc = np.exp(x[lc]) * (c.counts / clock_hz)
        latency_grad = np.zeros(self.n)
        latency_grad[lc] = cyc
        energy = Smooth(energy_value, energy_grad)
        latency = Smooth(float(np.sum(cyc)), latency_grad)
        row = len(self.network.layers) * c.per_layer
        extra_cols = iter(self._extra_cols)
        if self.area_budget_mm2 is not None:
            r = _log(self.area(x)) - math.log(self.area_budget_mm2)
            g[row] = r.value
            jac.append(r.grad[next(extra_cols)])
            row += 1
        totals = {"latency_s": latency, "energy_pJ": energy}
        if self.caps.power_mW is not None:
            totals["power_mW"] = energy / latency * 1e-9
        for cap in ("latency_s", "energy_pJ", "power_mW"):
            bound = getattr(self.caps, cap)
            if bound is not None:
                r = _log(totals[cap]) - math.log(bound)
                g[row] = r.value
                jac.append(r.grad[next(extra_cols)])
                row += 1
        self._evaluation = _Evaluation(x, g, np.concatenate(jac), energy, latency, layer_energy)
        return self._evaluation

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
