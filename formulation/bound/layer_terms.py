"""What every legal mapping of a layer must pay, on any hardware inside a box of the template.

Notation: one layer (``G`` groups run one after the other, so every count below is for all groups),
``MACs`` its multiply-accumulates, ``|W|``, ``|O|`` the tensor sizes and ``|I|`` the input words
some MAC actually uses (with strides and dilations not every input column is used). The
template's hierarchy is DRAM (level 0) -> shared levels -> the fanout into the PE array (level
``f``) -> per-PE levels -> MACs; spatial loops exist only at ``f`` (every other fanout is 1), so a
mapping's spatial factors ``s_d`` divide the layer's bounds ``D_d`` and use ``S = prod_d s_d`` PEs.
A *box* gives each hardware variable an integer interval (:class:`HardwareBox`).

The bound of a layer over a box uses only facts that hold for every mapping and every hardware
point in the box, so it never exceeds the exact model:

1. **MACs**: ``MACs e_mac`` exactly.
2. **Compulsory DRAM traffic** (:func:`compulsory_words`): DRAM reads at least ``|W| + |I|`` words
   and takes at least ``|O|`` output updates: every weight and every used input leaves DRAM once
   (a parent serves distinct children separately, and a child's arrivals cover its partition;
   link transfers only happen below the PE fanout, where DRAM is never the direct parent unless
   every shared level bypasses, and then still the first copy of a word comes from DRAM), and
   every output is written back once. Energy per vector access of ``B`` words with ceilings
   dropped: ``ceil(r/B) >= r/B``. DRAM's energy does not depend on any size.
3. **Operand delivery to the MACs** (:mod:`formulation.bound.reuse`): each MAC takes a weight and an
   input from, and gives a partial sum to, the nearest level keeping the tensor. If that level is
   per-PE, it serves exactly ``MACs`` reads (weights, inputs; link transfers only add reads there)
   or ``MACs`` updates (outputs; no reduction below the fanout), and the words entering and
   leaving the PEs are bounded by their capacity (the segment bound of
   :mod:`formulation.bound.reuse`; likewise the whole chip against DRAM). If it is shared (or DRAM), it
   serves ``MACs / m_t`` words, ``m_t`` the number of PEs one word reaches: ``m_W = s_N s_P s_Q``
   (multicast), ``m_O = s_C s_R s_S`` (spatial reduction) and ``m_I <= s_K min(s_P, s_R)
   min(s_Q, s_S)`` (an input column is shared by at most ``min(s_P, s_R)`` (P, R) pairs, since for
   a fixed ``R`` index the ``P`` offsets are distinct). The triples ``(m_W, m_I, m_O)`` that legal
   spatial splits on the box's largest mesh can give are enumerated exactly
   (:func:`multicast_quads`, with the most PEs each triple can use), so no tensor gets a
   multicast the mesh and the layer's divisors cannot give together with the others' (every
   dimension is irrelevant to exactly one tensor, so the factors compete for the same PEs). DRAM delivering
   directly costs only what exceeds its compulsory traffic: ``max(0, MACs/m_t - |t|)`` words.
   Per-access energies are taken at the box's smallest sizes (energy grows with size). No link
   transfers reach a MAC, and none reduce the reads of a shared level whose child bypasses the
   tensor (:mod:`formulation.model.links`), so the delivery counts above are exact or low.
4. **Cycles** (:func:`cycles_floor`): ``cycles >= compute = MACs / S`` and ``S <= U(mx, my)``, the
   largest product of divisors ``s_d | D_d`` that fits the mesh with X factors multiplying to at
   most ``mx``, Y factors to at most ``my`` and each dimension on one axis
   (:func:`utilization_table`, exact by enumeration, monotone in the mesh); and a level with a
   bandwidth takes ``ceil(compute / slowdown) >= words / bandwidth`` cycles, which for DRAM gives
   ``cycles >= (|W| + |I|) / read_bw`` and ``cycles >= |O| / write_bw``; on templates of DRAM,
   one buffer and one per-PE level, DRAM's reads and updates beyond that which the loop orders
   above the chip force when the chip cannot keep a tensor between iterations
   (:mod:`formulation.bound.orders`).
5. **Energy against cycles** (``LayerBoundTerms.front``): items 3 and 4 are evaluated for every
   spatial triple and every way to serve each tensor (kept per PE or streamed, from a shared level
   or DRAM) together: a row's cycles are at least ``MACs / PEs`` of its split and, per level with a
   bandwidth, the words it reads (writes) over its read (write) bandwidth (a streamed tensor costs
   its keeper ``MACs / m_t`` accesses); the rows' Pareto front of (cycles, energy) says how much
   energy a mapping needs to be that fast. Every legal mapping is one of the rows.

Ceilings, halos, link transfers (of inputs; weights and outputs never link), loop orders and
bypass are thus all taken at their most favourable; what is left out only makes the bound lower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from formulation.axes import Dim, Tensor
from formulation.bound.reuse import ChipLevel, candidate_table, candidates
from formulation.bound.tiles import step_vectors
from formulation.factors import divisors
from formulation.specs.template import ArchTemplate, Hardware
from formulation.specs.types import Architecture, Layer
from formulation.technology import architecture_area_mm2

@dataclass(frozen=True)
class HardwareBox:
    """Integer intervals for the mesh sides and the variable buffer sizes (words), inclusive."""

    mesh_x: tuple[int, int]
    mesh_y: tuple[int, int]
    sizes: tuple[tuple[str, int, int], ...]

    @classmethod
    def of_template(cls, template: ArchTemplate) -> HardwareBox:
        return cls(tuple(template.mesh_x_range), tuple(template.mesh_y_range), tuple(template.size_ranges))

    def optimistic_hardware(self) -> Hardware:
        """The largest mesh and the smallest buffers: the cheapest accesses and the most PEs."""
        return Hardware(self.mesh_x[1], self.mesh_y[1], tuple((n, lo) for n, lo, _ in self.sizes))

    def largest_hardware(self) -> Hardware:
        """The largest mesh and buffers: the most capacity in the box."""
        return Hardware(self.mesh_x[1], self.mesh_y[1], tuple((n, hi) for n, _, hi in self.sizes))

    def smallest_hardware(self) -> Hardware:
        """The smallest mesh and buffers: the least area in the box."""
        return Hardware(self.mesh_x[0], self.mesh_y[0], tuple((n, lo) for n, lo, _ in self.sizes))

    def widths(self) -> dict[str, float]:
        """ln(hi / lo) of every variable (``mesh_x``, ``mesh_y`` and the level names)."""
        out = {"mesh_x": math.log(self.mesh_x[1] / self.mesh_x[0]), "mesh_y": math.log(self.mesh_y[1] / self.mesh_y[0])}
        out.update({name: math.log(hi / lo) for name, lo, hi in self.sizes})
        return out

    def split(self, name: str) -> tuple[HardwareBox, HardwareBox]:
        """Two boxes covering every integer point of this one, cut at the geometric middle of ``name``."""
        def cut(lo: int, hi: int) -> tuple[tuple[int, int], tuple[int, int]]:
            mid = max(lo, min(hi - 1, int(math.floor(math.sqrt(lo * hi)))))
            return (lo, mid), (mid + 1, hi)

        if name == "mesh_x":
            a, b = cut(*self.mesh_x)
            return HardwareBox(a, self.mesh_y, self.sizes), HardwareBox(b, self.mesh_y, self.sizes)
        if name == "mesh_y":
            a, b = cut(*self.mesh_y)
            return HardwareBox(self.mesh_x, a, self.sizes), HardwareBox(self.mesh_x, b, self.sizes)
        boxes = []
        for part in cut(*next((lo, hi) for n, lo, hi in self.sizes if n == name)):
            boxes.append(HardwareBox(self.mesh_x, self.mesh_y,
                                     tuple((n, *part) if n == name else (n, lo, hi) for n, lo, hi in self.sizes)))
        return boxes[0], boxes[1]

    def min_area_mm2(self, template: ArchTemplate) -> float:
        """Area is increasing in every variable, so the smallest corner has the box's least area."""
        return architecture_area_mm2(template.instantiate(self.smallest_hardware()))


def used_extent(bound: int, filt: int, stride: int, dilation: int) -> int:
    """Distinct input coordinates ``stride*p + dilation*r`` (``p < bound``, ``r < filt``) some MAC reads."""
    return len({stride * p + dilation * r for p in range(bound) for r in range(filt)})


def compulsory_words(layer: Layer) -> dict[Tensor, int]:
    """``|W|``, ``|I|`` (used inputs only) and ``|O|`` for all groups (item 2 of the module docstring)."""
    d = layer.dims
    g = layer.G
    cols = used_extent(d[Dim.P], d[Dim.R], layer.Wstride, layer.Wdilation)
    rows = used_extent(d[Dim.Q], d[Dim.S], layer.Hstride, layer.Hdilation)
    return {Tensor.W: g * d[Dim.K] * d[Dim.C] * d[Dim.R] * d[Dim.S],
            Tensor.I: g * d[Dim.N] * d[Dim.C] * cols * rows,
            Tensor.O: g * d[Dim.N] * d[Dim.K] * d[Dim.P] * d[Dim.Q]}


@lru_cache(maxsize=256)
def utilization_table(dims: tuple[int, ...], max_x: int, max_y: int) -> np.ndarray:
    """``U[x, y]``: the most PEs a mapping of a layer with these bounds can use on an ``x`` by ``y`` mesh.

    Enumerates every assignment of a divisor ``s_d | D_d`` to mesh X or Y (one axis per
    dimension) by dynamic programming over the dimensions on the set of reachable ``(X product,
    Y product)`` pairs, then takes the running maximum of ``X * Y`` over ``x' <= x, y' <= y``.
    """
    reach = {(1, 1)}
    for bound in dims:
        nxt = set()
        for x, y in reach:
            for v in divisors(bound):
                if x * v <= max_x:
                    nxt.add((x * v, y))
                if y * v <= max_y:
                    nxt.add((x, y * v))
        reach = nxt
    table = np.zeros((max_x + 1, max_y + 1), dtype=np.int64)
    for x, y in reach:
        table[x, y] = max(table[x, y], x * y)
    return np.maximum.accumulate(np.maximum.accumulate(table, axis=0), axis=1)


@dataclass(frozen=True)
class AccessCosts:
    """Energy per word (pJ, per-access energy over the block size) of one level, its index and bandwidths."""

    read: float
    fill: float
    update: float
    level: int = 0
    read_bw: float | None = None    # words per cycle per instance (None: unlimited)
    write_bw: float | None = None


def access_costs(template: ArchTemplate, arch: Architecture, t: Tensor) -> dict[str, list[AccessCosts]]:
    """The levels that may keep ``t``, by kind: ``per_pe``, ``shared`` (on chip) and ``dram``."""
    out: dict[str, list[AccessCosts]] = {"per_pe": [], "shared": [], "dram": []}
    array = set(template.array_levels)
    for index, level in enumerate(arch.levels):
        if t not in level.keeps and index > 0:
            continue
        kind = "dram" if index == 0 else "per_pe" if index in array else "shared"
        b = level.block_size
        out[kind].append(AccessCosts(level.read_energy_pJ / b, level.fill_energy_pJ / b, level.update_energy_pJ / b,
                                     index, level.read_bw_words, level.write_bw_words))
    return out


def option_floor(t: Tensor, kind: str, c: AccessCosts, m: np.ndarray, words: int, macs: int) -> np.ndarray:
    """Energy per MAC of serving ``t`` to the MACs straight from a shared level or DRAM with multicast ``m``.

    With ``u = |t| / MACs``: a shared keeper ``read / m`` (outputs ``update / m + read max(0, 1/m -
    u)``: every update but the first of each element reads); DRAM only what exceeds the
    compulsory traffic, ``read max(0, 1/m - u)`` (outputs with ``update + read``). Tensors kept
    per PE are :mod:`formulation.bound.reuse`'s.
    """
    excess = np.maximum(0.0, 1.0 / m - words / macs)
    if kind == "shared":
        return c.update / m + c.read * excess if t is Tensor.O else c.read / m
    return (c.update + c.read) * excess if t is Tensor.O else c.read * excess


def multicast_triples(dims: tuple[int, ...], max_x: int, max_y: int) -> np.ndarray:
    """Every ``(m_W, m_I, m_O)`` a legal spatial split of a layer with these bounds can give, ``[n, 3]``."""
    return multicast_quads(dims, max_x, max_y)[:, :3]


@lru_cache(maxsize=4096)
def multicast_quads(dims: tuple[int, ...], max_x: int, max_y: int) -> np.ndarray:
    """Every ``(m_W, m_I, m_O)`` a legal spatial split can give and the most PEs such a split uses, ``[n, 4]``
    (:func:`multicast_rows` without links)."""
    return multicast_rows(dims, max_x, max_y, False)[:, [0, 1, 2, 4]].astype(np.int64)


@lru_cache(maxsize=4096)
def multicast_rows(dims: tuple[int, ...], max_x: int, max_y: int, links: bool) -> np.ndarray:
    """Every ``(m_W, m_I, m_O, M_I)`` a legal spatial split can give and the most PEs such a split uses, ``[n, 5]``.

    Enumerates every assignment of a divisor ``s_d | D_d`` to mesh X or Y (one axis per dimension,
    X factors multiplying to at most ``max_x``, Y to at most ``max_y``), dimension by dimension in
    the order ``N C K R P S Q`` with duplicate states merged, and returns ``m_W = s_N s_P s_Q``,
    ``m_O = s_C s_R s_S`` and the upper bound ``m_I <= s_K min(s_P, s_R) min(s_Q, s_S)`` (item 3).
    A larger mesh only adds splits, so the rows of a box's largest mesh cover the whole box.

    ``M_I`` (``m_I`` without ``links``) bounds how many *new* input fills of the PEs (words not in
    the PE's previous tile) one parent word serves when neighbours forward inputs
    (:mod:`formulation.model.links`): ``M_I = max(m_I, s_K s_P s_R s_Q s_S / min(s_P + s_R - 1,
    s_Q + s_S - 1))``. Proof: at one step of the walk above the fanout every one of the ``F =
    prod_d s_d`` children fills ``|D_0|`` words, the box ``D_0`` translated by its offset
    ``tau(c)``, and the parent serves ``U_rest |D_0|`` words, ``U_rest`` the number of distinct
    offsets among the children not served by a neighbour (``U`` of them without links; one
    group of children with equal offsets has at most ``m_I`` members, so ``F / U <= m_I``). The
    offsets form a product set ``T = T_W x T_H x T_C x T_N`` (input width from ``(p, r)``, height
    from ``(q, s)``, channel, batch), with ``|T_W| = n_W >= s_P + s_R - 1`` (a sum of two sets of
    ``s_P`` and ``s_R`` distinct integers has at least that many elements), likewise ``n_H``. A
    child is served by a neighbour only if its offset plus the move ``delta`` of ``D_0`` since the
    previous step is in ``T``. If ``delta = 0`` its delta is its own previous delta, already in
    its previous tile: none of those fills is new. Otherwise every line of ``T`` along ``delta``
    (at most ``max(n_W, n_H)`` points: ``delta`` has no part off the window axes) has an end
    ``t`` with ``t + delta`` not in ``T``, whose children the parent serves, so ``U_rest >= |T| /
    max(n_W, n_H)`` and ``F / U_rest <= s_K s_P s_R s_Q s_S / min(n_W, n_H)``. Summed over the
    steps, new fills are at most ``M_I`` times the parent's words.
    """
    # state columns: x, y, w (= s_N s_P s_Q so far), o (= s_C s_R s_S so far), i (= s_K min(..) so far),
    # pending (s_R until P is placed, then s_S until Q is placed), and with links: s_K s_P s_R s_Q s_S,
    # s_P + s_R - 1 and s_Q + s_S - 1
    state = np.array([[1, 1, 1, 1, 1, 1, 1, 1, 1]], dtype=np.int64)
    for dim in (Dim.N, Dim.C, Dim.K, Dim.R, Dim.P, Dim.S, Dim.Q):
        rows = []
        for v in divisors(dims[dim]):
            for axis in ((0,) if v == 1 else (0, 1)):
                nxt = state.copy()
                nxt[:, axis] *= v
                if links and dim not in (Dim.N, Dim.C):
                    nxt[:, 6] *= v
                if dim in (Dim.N,):
                    nxt[:, 2] *= v
                elif dim is Dim.C:
                    nxt[:, 3] *= v
                elif dim is Dim.K:
                    nxt[:, 4] *= v
                elif dim in (Dim.R, Dim.S):
                    nxt[:, 3] *= v
                    nxt[:, 5] = v
                else:  # P after R, Q after S: fold the window pair's min into m_I
                    nxt[:, 2] *= v
                    nxt[:, 4] *= np.minimum(nxt[:, 5], v)
                    if links:
                        nxt[:, 7 if dim is Dim.P else 8] = nxt[:, 5] + v - 1
                    nxt[:, 5] = 1
                rows.append(nxt[(nxt[:, 0] <= max_x) & (nxt[:, 1] <= max_y)])
        state = np.unique(np.concatenate(rows), axis=0)
    m_i = state[:, 4].astype(np.float64)
    linked = np.maximum(m_i, state[:, 6] / np.minimum(state[:, 7], state[:, 8])) if links else m_i
    rows = np.unique(np.column_stack([state[:, [2, 4, 3]], linked, state[:, 0] * state[:, 1]]).astype(np.float64),
                     axis=0)
    last = np.ones(len(rows), dtype=bool)  # rows sorted by multicasts, then PEs: keep each one's last
    last[:-1] = (rows[1:, :4] != rows[:-1, :4]).any(axis=1)
    return rows[last]


@dataclass(frozen=True)
class LayerBoundTerms:
    """The bound's constants for one layer over one box (energies in pJ, cycles)."""

    macs: int
    energy_pJ: float          # items 1-3: a lower bound on the layer's energy anywhere in the box
    cycles_floor: float       # item 4 without the mesh: max(MACs / U(box), DRAM words / bandwidth)
    compulsory: dict          # words per tensor
    #: item 5: (cycles, energy_pJ) pairs, cycles ascending: a mapping with fewer cycles than
    #: front[k][0] (k >= 1) costs at least front[k - 1][1]; every mapping costs at least front[-1][1]
    front: tuple[tuple[float, float], ...] = ()


def cycles_floor(layer: Layer, arch: Architecture, words: dict[Tensor, int], pes_usable: int) -> float:
    """``max(MACs / U, (|W| + |I|) / read_bw_DRAM, |O| / write_bw_DRAM)`` (item 4)."""
    top = arch.levels[0]
    floor = layer.macs / max(pes_usable, 1)
    if top.read_bw_words is not None:
        floor = max(floor, (words[Tensor.W] + words[Tensor.I]) / top.read_bw_words)
    if top.write_bw_words is not None:
        floor = max(floor, words[Tensor.O] / top.write_bw_words)
    return floor


def layer_terms(layer: Layer, template: ArchTemplate, box: HardwareBox) -> LayerBoundTerms:
    """Items 1-5 of the module docstring for ``layer`` anywhere in ``box``.

    They depend on the box only through its largest mesh, its smallest sizes (energies) and its
    largest sizes (capacities), so boxes that share those share the terms (cached; the per-PE
    table, the expensive part, depends on the per-PE levels' largest sizes only).
    """
    return _layer_terms(layer, template, box.mesh_x[1], box.mesh_y[1], tuple((n, lo) for n, lo, _ in box.sizes),
                        tuple((n, hi) for n, _, hi in box.sizes))


def _layer_setup(layer: Layer, template: ArchTemplate, mesh_x: int, mesh_y: int, sizes_lo: tuple, sizes_hi: tuple):
    """The architecture at the box's smallest sizes and largest mesh, and at its largest sizes."""
    box = HardwareBox((mesh_x, mesh_x), (mesh_y, mesh_y), tuple((n, lo, dict(sizes_hi)[n]) for n, lo in sizes_lo))
    return template.instantiate(box.optimistic_hardware()), template.instantiate(box.largest_hardware())


@lru_cache(maxsize=8192)
def _table(layer: Layer, template: ArchTemplate, mesh_x: int, mesh_y: int, sizes_lo: tuple, per_pe_hi: tuple):
    """The per-PE candidate table (:func:`formulation.bound.reuse.candidate_table`) and the usable PEs."""
    arch, largest = _layer_setup(layer, template, mesh_x, mesh_y, sizes_lo,
                                 tuple((n, dict(per_pe_hi).get(n, lo)) for n, lo in sizes_lo))
    words = compulsory_words(layer)
    most = utilization_table(tuple(layer.dims), template.mesh_x_range[1], template.mesh_y_range[1])
    usable = int(most[mesh_x, mesh_y])
    costs = {t: access_costs(template, arch, t) for t in (Tensor.W, Tensor.I, Tensor.O)}
    array = template.array_levels
    capacity = sum(largest.levels[i].size_words for i in array)
    d = layer.dims
    e_link = {t: math.inf for t in Tensor}
    if d[Dim.R] > 1 or d[Dim.S] > 1:  # inputs link only along sliding windows
        e_link[Tensor.I] = min(min(lv.read_energy_pJ, lv.fill_energy_pJ, lv.update_energy_pJ) / lv.block_size
                               for lv in (arch.levels[i] for i in array))
    rho = min(d[Dim.R] * d[Dim.S], d[Dim.P] * d[Dim.Q])
    rows = multicast_rows(tuple(d), mesh_x, mesh_y, bool(np.isfinite(e_link[Tensor.I])))
    tiles = None
    if len(array) == 1:  # whole tiles of the single per-PE level (formulation.bound.tiles)
        tiles = lambda kept: step_vectors(layer, kept, int(capacity))  # noqa: E731
    table = candidate_table(costs, words, layer.macs, rows, capacity, usable,
                            rho, e_link, lambda t, kind, c, m: option_floor(t, kind, c, m, words[t], layer.macs),
                            tiles)
    return table, usable, capacity


@lru_cache(maxsize=8192)
def _layer_terms(layer: Layer, template: ArchTemplate, mesh_x: int, mesh_y: int, sizes_lo: tuple,
                 sizes_hi: tuple) -> LayerBoundTerms:
    names = {template.base.levels[i].name for i in template.array_levels}
    table, usable, capacity = _table(layer, template, mesh_x, mesh_y, sizes_lo,
                                     tuple((n, hi) for n, hi in sizes_hi if n in names))
    arch, largest = _layer_setup(layer, template, mesh_x, mesh_y, sizes_lo, sizes_hi)
    words = compulsory_words(layer)
    top = arch.levels[0]
    dram = (top.read_energy_pJ * (words[Tensor.W] + words[Tensor.I]) + top.update_energy_pJ * words[Tensor.O]) \
        / top.block_size
    shared = sum(lv.size_words for i, lv in enumerate(largest.levels) if i > 0 and i not in template.array_levels)
    dram_costs = {t: access_costs(template, arch, t)["dram"][0] for t in (Tensor.W, Tensor.I, Tensor.O)}
    chip = ChipLevel(float(shared), float(capacity) * mesh_x * mesh_y,
                     tuple(c.update if t is Tensor.O else c.read for t, c in dram_costs.items()))
    d = layer.dims
    energy, cycles = candidates(table, chip, words, layer.macs, min(d[Dim.R] * d[Dim.S], d[Dim.P] * d[Dim.Q]))
    energy = energy + layer.macs * arch.mac.energy_pJ + dram
    floor = cycles_floor(layer, arch, words, usable)
    from formulation.bound import orders  # it builds on this module's compulsory words

    if orders.applies(largest, template.array_levels):
        floor = max(floor, orders.order_floor(layer, largest, (mesh_x, mesh_y)))
    front = tuple((max(float(c), floor), float(e)) for c, e in zip(cycles, energy))
    return LayerBoundTerms(layer.macs, float(energy.min()), max(floor, float(cycles.min())), words, front)
