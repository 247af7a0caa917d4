"""A slow, literal reference simulator of Timeloop v3.0.3's access counting (default settings).

It exists to cross-check the vectorized model (:mod:`formulation.model.exact`, :mod:`formulation.model.nest`)
and to document the semantics by example. Instead of closed forms it walks the loop nest and
counts accesses with explicit Python sets of tensor elements. It is meant for tiny layers only
(:data:`MAX_MACS`).

The loop nest
-------------
The mapping is flattened into one list of loops, outermost first (:func:`flatten_nest`): the
storage levels outermost first; inside a level its temporal loops (``permutation`` read
innermost first, so reversed here) and then its spatial loops, which sit innermost in the level
and distinguish the instances of the level below. With ``G > 1`` groups, one extra temporal loop
over the group index sits outermost; every tensor has a group coordinate, so each group is a
disjoint copy of the problem. Each loop index advances its dimension by a ``step``, the product
of the bounds of the inner loops over the same dimension, so a point of the loop space is the
sum of ``index * step`` over the loops.

Tiles
-----
The tile of tensor ``T`` at level ``L`` is what all loops of ``L`` and below (temporal and
spatial, ``L``'s own fanout included) touch, for fixed indices of the loops above. Timeloop keeps
a tile as an axis-aligned hyper-rectangle of tensor coordinates, so a strided or dilated input tile
includes the columns in between that no MAC uses. Tensor coordinates (the group ``g`` is a
coordinate too):

* Weights ``(g, k, c, s, r)``;
* Inputs ``(n, g, c, h, w)`` with ``h = q*Hstride + s*Hdilation`` and ``w = p*Wstride + r*Wdilation``;
* Outputs ``(n, g, k, q, p)``.

The walk, and what reaches a level
----------------------------------
For every level ``L`` below the outermost one (and for the MACs), Timeloop walks the temporal
loops above ``L`` depth first, running only iteration #0 (weight 1) and iteration #1 (weight
``f - 1``, standing for iterations ``1 .. f-1``) of each loop; a loop with ``f = 1`` runs only #0.
Every visited tile of an instance is compared with the previous visited tile *of the same
instance* (:class:`TileHistory`, "reset on stride change"), which gives a delta: the elements that
must arrive. ``arrivals(L)`` per instance is the sum over visits of ``|delta| * weight`` (the
product of the weights of the enclosing iterations). A MAC has no operand reuse: its "delta" is
its whole one-element tile at every iteration.

The parent of ``L`` for ``T`` is the nearest outer level that keeps ``T``. At each visited step
the children of one parent instance (every instance below the fanouts between them, bypassed
levels included) that receive *identical* delta sets share one access at the parent; different or
partially overlapping deltas are separate accesses. Through several fanouts (bypassed levels in
between) the sharing is decided fanout by fanout (:func:`_shared_words`). That is multicast for the read-only tensors
going down, and spatial reduction for partial sums going up: children that differ only in a
spatial C/R/S index hold the same outputs, so their deltas are identical sets and reach the parent
as one update. So ``traffic(parent, T)`` = sum over steps of ``weight`` times the total size of the
distinct deltas among the children of each parent instance.

Counts (per instance; totals are sums over the utilized instances)
------------------------------------------------------------------
* Weights, Inputs: ``fills(L) = arrivals(L)`` (0 at the outermost level) and ``reads(L) =
  traffic(L)``, the words sent to the nearest inner keeping level or to the MACs.
* Outputs: with ``partition(L)`` the distinct elements one instance ever holds (the union of its
  tiles over *all* iterations above ``L``), ``fills(L) = arrivals(L) - partition(L)`` (the first
  arrival of each element is a zero and is elided), ``updates(L) = traffic(L)`` (the partial sums
  drained from the inner keeping level, or one per MAC result, after spatial reduction) and
  ``reads(L) = updates(L) - partition(L)`` (the first accumulation into each element reads nothing).

Energy and cycles follow the README of the Timeloop reference cases (sections 6 and 7): the energy
of each instance is charged per vector access of ``block_size`` words (ceilings per instance), and a
level with a bandwidth slows the run down in IEEE double precision, summing tensors in the order
Weights, Inputs, Outputs.

Not modelled: capacity (the simulator does not care whether tiles fit), sparsity, multiple
buffering, the imperfect factorizations Timeloop allows (every factor product must equal the
layer's bound), and link transfers other than those into the MACs (below).

Link transfers
--------------
Timeloop v3.0.3 (README section 5) also lets a child take its delta from a mesh neighbour that
received the same elements at the previous step, when that saves parent accesses; the forwarded
words then count as extra reads and fills of the child level and the parent reads less.

*Below a fanout onto the MACs* whose level keeps the tensor, the simulator does this literally
(:func:`_mac_links`): at every step, a MAC whose point a grid neighbour held at the previous step
is served over the link if that leaves fewer distinct points for the parent to send. (That is
Timeloop's rule for MACs, :mod:`formulation.model.links`, "Fanout into the MACs".)

*Elsewhere* (fanouts onto storage levels, and MAC fanouts whose level bypasses the tensor) the
simulator does **not** model links: its counts are those without links. It only flags where links
*could* occur: ``SimResult.link_candidates[T]`` counts, below every such fanout and for every
tensor (kept by the child or not), the (step, child) pairs whose non-empty delta -- Timeloop's nest
delta, and for MACs also the whole point -- equals what another child of the same fanout instance
received or held at the previous step of the walk. Mesh neighbours are such children, so when the
count is 0 for ``T``, no link can change any count of ``T``; when it is not, the simulator's counts
of ``T`` may differ from Timeloop's (they do in the reference cases tagged ``link_transfers``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np

from formulation.axes import DIMS, N_TENSORS, TENSORS, Dim, Tensor
from formulation.specs.types import Architecture, Layer, Mapping, SpecError, StorageLevel

MAX_MACS = 1_000_000
"""Refuse layers with more MACs than this: the simulator enumerates element sets and is slow."""

GROUP = len(DIMS)
"""Index of the group loop in a loop-space point; the seven :class:`Dim` values come first."""

N_LOOP_DIMS = GROUP + 1
READ_ONLY = (Tensor.W, Tensor.I)


@dataclass(frozen=True)
class Loop:
    """One loop of the flattened nest: ``dim`` is a :class:`Dim` or :data:`GROUP`."""

    level: int
    dim: int
    bound: int
    spatial: bool
    step: int = 0  # how far one iteration advances ``dim``


def flatten_nest(layer: Layer, mapping: Mapping) -> list[Loop]:
    """All loops of the mapping, outermost first, each with its step along its dimension."""
    loops = [Loop(level=0, dim=GROUP, bound=layer.G, spatial=False)]
    for level, lm in enumerate(mapping.levels):
        loops += [Loop(level, d, lm.temporal[d], False) for d in reversed(lm.permutation)]
        loops += [Loop(level, d, lm.spatial[d], True) for d in reversed(lm.spatial_order)]
    stepped = []
    covered = [1] * N_LOOP_DIMS  # extent of each dimension covered by the loops inside
    for loop in reversed(loops):
        stepped.append(replace(loop, step=covered[loop.dim]))
        covered[loop.dim] *= loop.bound
    return stepped[::-1]


def loop_point(loops: list[Loop], indices: tuple[int, ...]) -> np.ndarray:
    """The loop-space point (one coordinate per dimension) where ``loops`` stand at ``indices``."""
    point = np.zeros(N_LOOP_DIMS, dtype=np.int64)
    for loop, i in zip(loops, indices):
        point[loop.dim] += i * loop.step
    return point


class TensorSpace:
    """The coordinates of one tensor: each axis is a linear form of the loop-space point.

    Elements are encoded as integers (mixed radix over the axis lengths) so that tiles are plain
    ``frozenset``s of ints.
    """

    def __init__(self, axes: list[tuple[dict[int, int], int]]):
        self.coeff = np.zeros((len(axes), N_LOOP_DIMS), dtype=np.int64)
        for a, (terms, _) in enumerate(axes):
            for d, c in terms.items():
                self.coeff[a, d] = c
        lengths = [length for _, length in axes]
        self.radix = np.array([math.prod(lengths[a + 1:]) for a in range(len(axes))], dtype=np.int64)
        self._cache: dict[tuple[tuple[int, ...], tuple[int, ...]], frozenset[int]] = {}

    def box(self, base: np.ndarray, extent: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The hyper-rectangle (first and last coordinate per axis) covering the loop-space box
        ``[base, base + extent)``; all coefficients are non-negative, so the corners map to corners."""
        lo = self.coeff @ base
        hi = self.coeff @ (base + extent - 1)
        return tuple(int(v) for v in lo), tuple(int(v) for v in hi)

    def elements(self, lo: tuple[int, ...], hi: tuple[int, ...]) -> frozenset[int]:
        key = (lo, hi)
        found = self._cache.get(key)
        if found is None:
            codes = np.zeros(1, dtype=np.int64)
            for a in range(len(lo)):
                codes = (codes[:, None] + self.radix[a] * np.arange(lo[a], hi[a] + 1)[None, :]).ravel()
            found = frozenset(codes.tolist())
            self._cache[key] = found
        return found


def tensor_spaces(layer: Layer) -> dict[Tensor, TensorSpace]:
    n, k, c, p, q, r, s = layer.dims
    g = layer.G
    return {
        Tensor.W: TensorSpace([({GROUP: 1}, g), ({Dim.K: 1}, k), ({Dim.C: 1}, c), ({Dim.S: 1}, s), ({Dim.R: 1}, r)]),
        Tensor.I: TensorSpace([({Dim.N: 1}, n), ({GROUP: 1}, g), ({Dim.C: 1}, c),
                               ({Dim.Q: layer.Hstride, Dim.S: layer.Hdilation}, layer.input_height),
                               ({Dim.P: layer.Wstride, Dim.R: layer.Wdilation}, layer.input_width)]),
        Tensor.O: TensorSpace([({Dim.N: 1}, n), ({GROUP: 1}, g), ({Dim.K: 1}, k), ({Dim.Q: 1}, q), ({Dim.P: 1}, p)]),
    }


class TileHistory:
    """What one instance remembers between visits: the previous tile and the previous translation.

    Timeloop's delta rule ("reset on stride change"): the first tile arrives whole; the next one
    brings what the previous tile lacks and records the translation between them; later tiles do
    the same as long as the translation repeats, and when it changes the whole new tile arrives
    and the translation is forgotten.
    """

    def __init__(self) -> None:
        self.tile: frozenset[int] | None = None
        self.corner: tuple[int, ...] = ()
        self.translation: tuple[int, ...] | None = None

    def delta(self, tile: frozenset[int], corner: tuple[int, ...]) -> frozenset[int]:
        if self.tile is None:
            delta, translation = tile, None
        else:
            move = tuple(a - b for a, b in zip(corner, self.corner))
            if self.translation is None:
                delta, translation = tile - self.tile, move
            elif move == self.translation:
                delta, translation = tile - self.tile, move
            else:
                delta, translation = tile, None
        self.tile, self.corner, self.translation = tile, corner, translation
        return delta


def walk(loops: list[Loop]):
    """Timeloop's abbreviated walk over temporal ``loops`` (outermost first), depth first.

    Yields ``(indices, weight)``: each loop runs iteration #0 with weight 1 and, if its bound
    ``f > 1``, iteration #1 with weight ``f - 1``.
    """
    choices = [[(0, 1)] + ([(1, loop.bound - 1)] if loop.bound > 1 else []) for loop in loops]
    for combo in itertools.product(*choices):
        yield tuple(i for i, _ in combo), math.prod(w for _, w in combo)


@dataclass(frozen=True)
class SimResult:
    """Simulated counts; ``reads``/``fills``/``updates`` are totals over instances, ``[level, Tensor]``."""

    reads: np.ndarray
    fills: np.ndarray
    updates: np.ndarray
    utilized_instances: np.ndarray   # [level]
    output_partition: np.ndarray     # distinct output elements per instance, [level] (0 where bypassed)
    energy_pJ_by_tensor: np.ndarray  # [level, Tensor]
    mac_energy_pJ: float
    energy_pJ: float
    compute_cycles: int
    level_cycles: np.ndarray         # [level]
    throttling: np.ndarray           # [level]
    cycles: int
    macs: int
    link_candidates: np.ndarray      # [Tensor]: see "Link transfers" in the module docstring


class Nest:
    """The flattened loop nest of one mapping, with the questions the walk asks of it.

    Level ``len(mapping.levels)`` stands for the MACs (no loops of its own).
    """

    def __init__(self, layer: Layer, mapping: Mapping):
        self.loops = flatten_nest(layer, mapping)
        self.keep = [lm.keep for lm in mapping.levels]
        self.fanout = [math.prod(lm.spatial) for lm in mapping.levels]
        self.macs_level = len(mapping.levels)

    def temporal_above(self, level: int) -> list[Loop]:
        return [lp for lp in self.loops if not lp.spatial and lp.level < level]

    def spatial_above(self, level: int) -> list[Loop]:
        return [lp for lp in self.loops if lp.spatial and lp.level < level]

    def instances(self, level: int) -> int:
        return math.prod(lp.bound for lp in self.spatial_above(level))

    def instance_offsets(self, level: int) -> list[np.ndarray]:
        """Where each instance of ``level`` sits in the loop space, numbered with the outer spatial
        loops most significant (so the instances under one instance of an outer level are consecutive)."""
        spatial = self.spatial_above(level)
        return [loop_point(spatial, idx) for idx in itertools.product(*(range(lp.bound) for lp in spatial))]

    def extent(self, level: int) -> np.ndarray:
        """Extent of the tile at ``level`` along each loop dimension: the loops of ``level`` and below."""
        out = np.ones(N_LOOP_DIMS, dtype=np.int64)
        for lp in self.loops:
            if lp.level >= level:
                out[lp.dim] *= lp.bound
        return out

    def parent(self, level: int, t: Tensor) -> int:
        """The nearest outer level that keeps ``t``."""
        return max(m for m in range(level) if t in self.keep[m])

    def children_per_instance(self, parent: int, child: int) -> int:
        """Instances of ``child`` under one instance of ``parent``: the fanouts in between."""
        return math.prod(self.fanout[parent:child])


def _check(layer: Layer, arch: Architecture, mapping: Mapping) -> None:
    if layer.macs > MAX_MACS:
        raise ValueError(f"layer {layer.name}: {layer.macs} MACs is too large for the reference simulator "
                         f"(at most {MAX_MACS})")
    if len(mapping.levels) != len(arch.levels):
        raise SpecError(f"mapping = {len(mapping.levels)} levels: architecture {arch.name} has {len(arch.levels)}")
    for d in DIMS:
        product = math.prod(lm.temporal[d] * lm.spatial[d] for lm in mapping.levels)
        if product != layer.dims[d]:
            raise SpecError(f"mapping factors of {d.name} = {product}: must multiply to {layer.dims[d]}")
    for i, lm in enumerate(mapping.levels):
        fan_x, fan_y = arch.fanout(i)
        if math.prod(lm.spatial_x) > fan_x or math.prod(lm.spatial_y) > fan_y:
            raise SpecError(f"mapping[{lm.target}].spatial = {lm.spatial_x} x {lm.spatial_y}: "
                            f"exceeds the fanout {fan_x} x {fan_y}")
    if mapping.levels[0].keep != frozenset(TENSORS):
        raise SpecError(f"mapping[{mapping.levels[0].target}].keep: the outermost level keeps every tensor")


def simulate(layer: Layer, arch: Architecture, mapping: Mapping) -> SimResult:
    """Count reads, fills and updates by walking the loop nest with explicit element sets."""
    _check(layer, arch, mapping)
    nest = Nest(layer, mapping)
    spaces = tensor_spaces(layer)
    levels = len(arch.levels)
    instances = [nest.instances(level) for level in range(levels + 1)]
    arrivals = [np.zeros((n, N_TENSORS), dtype=np.int64) for n in instances]       # per receiving instance
    traffic = [np.zeros((n, N_TENSORS), dtype=np.int64) for n in instances[:-1]]  # per sending instance
    link_candidates = np.zeros(N_TENSORS, dtype=np.int64)
    last = mapping.levels[-1]
    fan_x, fan_y = arch.fanout(levels - 1)
    grid = (max(fan_x, math.prod(last.spatial_x)), max(fan_y, math.prod(last.spatial_y)))
    for receiver in range(1, levels + 1):
        _receive(nest, spaces, receiver, arrivals, traffic, link_candidates, grid)

    # Per-instance counts, [level][instance, tensor].
    reads = [np.zeros((n, N_TENSORS), dtype=np.int64) for n in instances[:-1]]
    fills = [np.zeros_like(r) for r in reads]
    updates = [np.zeros_like(r) for r in reads]
    partition = []
    for level in range(levels):
        kept = nest.keep[level]
        for t in READ_ONLY:
            if t in kept:
                reads[level][:, t] = traffic[level][:, t]
                fills[level][:, t] = arrivals[level][:, t] if level > 0 else 0
        if Tensor.O not in kept:
            partition.append(0)
            continue
        held = _output_partition(nest, spaces[Tensor.O], level)
        partition.append(int(held[0]))
        updates[level][:, Tensor.O] = traffic[level][:, Tensor.O]
        reads[level][:, Tensor.O] = updates[level][:, Tensor.O] - held
        fills[level][:, Tensor.O] = arrivals[level][:, Tensor.O] - held if level > 0 else 0

    compute = math.prod(lp.bound for lp in nest.loops if not lp.spatial)
    energy = np.array([[_energy(lv, reads[level][:, t], fills[level][:, t], updates[level][:, t]) for t in TENSORS]
                       for level, lv in enumerate(arch.levels)])
    throttling = np.array([_slowdown(lv, reads[level], fills[level], updates[level], compute)
                           for level, lv in enumerate(arch.levels)])
    level_cycles = np.array([math.ceil(float(compute) / slow) for slow in throttling], dtype=np.int64)
    mac_energy = layer.macs * arch.mac.energy_pJ
    return SimResult(
        reads=np.array([r.sum(axis=0) for r in reads]),
        fills=np.array([f.sum(axis=0) for f in fills]),
        updates=np.array([u.sum(axis=0) for u in updates]),
        utilized_instances=np.array(instances[:levels], dtype=np.int64),
        output_partition=np.array(partition, dtype=np.int64),
        energy_pJ_by_tensor=energy,
        mac_energy_pJ=mac_energy,
        energy_pJ=mac_energy + float(energy.sum()),
        compute_cycles=compute,
        level_cycles=level_cycles,
        throttling=throttling,
        cycles=max(compute, int(level_cycles.max())),
        macs=layer.macs,
        link_candidates=link_candidates,
    )


def _receive(nest: Nest, spaces: dict[Tensor, TensorSpace], receiver: int, arrivals: list[np.ndarray],
             traffic: list[np.ndarray], link_candidates: np.ndarray, grid: tuple[int, int] = (1, 1)) -> None:
    """Walk the temporal loops above ``receiver`` (a storage level or the MACs) and add up what its
    instances receive (``arrivals[receiver]``) and what their parents send (``traffic[parent]``).

    Below a fanout onto the MACs whose level keeps the tensor, MACs take a point a grid neighbour
    (``grid`` = ``h x v``) held at the previous step over the link when that lowers the parent's
    traffic (:func:`_mac_links`)."""
    macs = receiver == nest.macs_level
    counted = [t for t in TENSORS if macs or t in nest.keep[receiver]]
    # Links could only serve children of the fanout right above, for any tensor (Timeloop's
    # spatial deltas are those of the direct child level, whether it keeps the tensor or not).
    fanout = nest.fanout[receiver - 1]
    watched = list(TENSORS) if fanout > 1 else []
    tensors = [t for t in TENSORS if t in counted or t in watched]
    if not tensors:
        return
    temporal = nest.temporal_above(receiver)
    offsets = nest.instance_offsets(receiver)
    size = nest.extent(receiver)
    parent = {t: nest.parent(receiver, t) for t in counted}
    siblings = {t: nest.children_per_instance(parent[t], receiver) for t in counted}
    linked = {t for t in counted if macs and fanout > 1 and parent[t] == receiver - 1}
    history = {t: [TileHistory() for _ in offsets] for t in tensors}
    previous: dict[Tensor, list[frozenset[int]]] = {}
    before: dict[Tensor, list[frozenset[int]]] = {}
    for indices, weight in walk(temporal):
        base = loop_point(temporal, indices)
        for t in tensors:
            space = spaces[t]
            nest_deltas, tiles = [], []
            sent: dict[int, list[frozenset[int]]] = {}  # parent instance -> the deltas of its children
            for i, offset in enumerate(offsets):
                lo, hi = space.box(base + offset, size)
                tile = space.elements(lo, hi)
                tiles.append(tile)
                nest_deltas.append(history[t][i].delta(tile, lo))
                if t in counted:
                    delta = tile if macs else nest_deltas[i]  # a MAC fetches its operands every time
                    arrivals[receiver][i, t] += weight * len(delta)
                    sent.setdefault(i // siblings[t], []).append(delta)
            for j, deltas in sent.items():
                words = _shared_words(deltas, nest.fanout[parent[t]:receiver])
                if t in linked and t in before:
                    words = _mac_links(before[t][j * fanout:(j + 1) * fanout], tiles[j * fanout:(j + 1) * fanout],
                                       grid)
                traffic[parent[t]][j, t] += weight * words
            if t in watched and t not in linked and t in previous:
                link_candidates[t] += _neighbour_reuse(previous[t], nest_deltas, fanout)
                if macs:  # a MAC's own "delta" is its whole point: unchanged points may link too
                    link_candidates[t] += _neighbour_reuse(before[t], tiles, fanout)
            previous[t] = nest_deltas
            before[t] = tiles


def _mac_links(before: list[frozenset[int]], now: list[frozenset[int]], grid: tuple[int, int]) -> int:
    """Words the parent sends to the MACs of one fanout instance at one step, with links.

    A MAC (child id ``c`` at ``(c % h, c // h)``) is served over a link when a grid neighbour
    (``+-1`` along X or Y, no wrap-around) held its point at the previous step. The links are used
    when the MACs left over need fewer distinct points than all of them; the parent then sends
    those only (:mod:`formulation.model.links`, "Fanout into the MACs")."""
    h, v = grid
    n = len(now)
    every = set(now)
    rest = set()
    for c, point in enumerate(now):
        near = [c + 1] if c % h < h - 1 else []
        near += [c - 1] if c % h > 0 else []
        near += [c + h] if c // h < v - 1 else []
        near += [c - h] if c // h > 0 else []
        if not any(0 <= k < n and before[k] == point for k in near):
            rest.add(point)
    kept = rest if len(rest) < len(every) else every
    return sum(len(p) for p in kept)


def _shared_words(deltas: list[frozenset[int]], fanouts: list[int]) -> int:
    """Words one parent instance sends to its children (``deltas`` in instance order) through ``fanouts``.

    Fanout by fanout, outermost first: the children under one instance of the next level form a
    group, groups that need identical element sets (the union of their deltas) share one send, and
    each distinct group is served on its own. With one fanout this is "identical deltas share one
    access". Across two fanouts (the middle level bypassing the tensor) windows that overlap are
    **not** shared even when two leaves need the same rows, as timeloop-model v3.0.3 does
    (tests/data/timeloop_specs/eyeriss-like-rs-dummy: rows shared along a diagonal of a
    Q-by-S array are read once per PE).
    """
    if not fanouts or len(deltas) == 1:
        return sum(len(d) for d in set(deltas))
    size = len(deltas) // fanouts[0]
    distinct: dict[frozenset[int], list[frozenset[int]]] = {}
    for g in range(fanouts[0]):
        group = deltas[g * size:(g + 1) * size]
        distinct.setdefault(frozenset().union(*group), group)
    return sum(_shared_words(group, fanouts[1:]) for group in distinct.values())


def _neighbour_reuse(before: list[frozenset[int]], now: list[frozenset[int]], fanout: int) -> int:
    """Children whose non-empty delta a *different* sibling (same parent instance, consecutive
    blocks of ``fanout``) received at the previous step: the only ones a link could serve."""
    count = 0
    for start in range(0, len(now), fanout):
        holders: dict[frozenset[int], set[int]] = {}
        for i in range(start, start + fanout):
            holders.setdefault(before[i], set()).add(i)
        count += sum(1 for i in range(start, start + fanout) if now[i] and holders.get(now[i], set()) - {i})
    return count


def _output_partition(nest: Nest, space: TensorSpace, level: int) -> np.ndarray:
    """Distinct output elements each instance of ``level`` holds over the whole run: the union of
    its tiles over *all* iterations of the temporal loops above (not just the #0/#1 walk)."""
    temporal = nest.temporal_above(level)
    size = nest.extent(level)
    counts = []
    for offset in nest.instance_offsets(level):
        held: set[int] = set()
        for indices in itertools.product(*(range(lp.bound) for lp in temporal)):
            held |= space.elements(*space.box(loop_point(temporal, indices) + offset, size))
        counts.append(len(held))
    return np.array(counts, dtype=np.int64)


def _energy(lv: StorageLevel, reads: np.ndarray, fills: np.ndarray, updates: np.ndarray) -> float:
    """Energy of one tensor at one level: each instance pays per vector access of ``block_size`` words."""
    def blocks(words: np.integer) -> int:
        return -(-int(words) // lv.block_size)

    return sum(blocks(r) * lv.read_energy_pJ + blocks(f) * lv.fill_energy_pJ + blocks(u) * lv.update_energy_pJ
               for r, f, u in zip(reads, fills, updates))


def _slowdown(lv: StorageLevel, reads: np.ndarray, fills: np.ndarray, updates: np.ndarray, compute: int) -> float:
    """Bandwidth throttling of one level (``[instance, tensor]`` counts): 1 when it keeps up.

    Each instance has its own read and write ports; the slowest instance sets the pace (with exact
    factors all instances carry the same counts). Words per cycle are summed in IEEE doubles in
    Timeloop's order, Weights, Inputs, Outputs: the order matters for the last bit.
    """
    slowest = 1.0
    for i in range(reads.shape[0]):
        rd = 0.0
        wr = 0.0
        for t in TENSORS:
            rd += float(reads[i, t]) / compute
            wr += float(fills[i, t] + updates[i, t]) / compute
        slowdown = 1.0
        if lv.read_bw_words is not None and rd > lv.read_bw_words:
            slowdown = min(slowdown, lv.read_bw_words / rd)
        if lv.write_bw_words is not None and wr > lv.write_bw_words:
            slowdown = min(slowdown, lv.write_bw_words / wr)
        slowest = min(slowest, slowdown)
    return slowest
