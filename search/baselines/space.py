"""The shared genotype of the baseline methods, its repair operator, and the baselines' Pareto archive.

**Genome.** One integer vector per whole-network design (:class:`DesignSpace`):

* hardware, ordinal genes: the index of ``mesh_x`` and ``mesh_y`` among the integers of the
  template's ranges, and per variable buffer the index of its size among the legal sizes (the
  powers of two in the range, plus the range's ends, which is what
  :func:`search.rounding.nearest_power_of_two` can return; with ``fixed_hardware`` a single value);
* per layer, categorical genes: the slot of every prime factor of every loop bound (dimension by
  dimension, primes ascending) among ``L`` temporal slots (one per storage level, outermost
  first) and the spatial X and Y slots at the fanout into the PE array; a loop-order index per
  level into :data:`ORDERS`; and a keep bit for every (level below the outermost, tensor the
  level's hardware can hold), 1 meaning kept, 0 bypassed.

**Decode and repair.** :meth:`DesignSpace.decode` multiplies every prime into its slot. A prime
whose spatial slot would take the product of that mesh axis beyond the mesh side, or whose
dimension already uses the other axis, goes to the temporal slot of the fanout level instead (so
decoded spatial factors always fit). What can still be illegal is capacity: tiles that overflow
a buffer. :meth:`DesignSpace.repair_design` fixes that with the project's
:func:`search.rounding.repair` on the instantiated architecture (if a buffer is too small for
one element of the tensors the genome keeps there, the layer bypasses every level below the
outermost). :meth:`DesignSpace.legalize` is the repair operator on genomes: decode a batch,
repair only the mappings :func:`~formulation.model.validation.mapping_violations` rejects, and encode
the legal designs back (Lamarckian), canonically, so equal designs have equal genomes.

**Evaluation** of genomes by the exact model, and the budget and best design of a run, are
:mod:`search.baselines.evaluation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from formulation.axes import DIMS, N_DIMS, N_TENSORS, TENSORS, Dim
from formulation.model.encoding import MappingArrays
from formulation.specs.types import Architecture, Layer, Network, SpecError
from formulation.technology import architecture_area_mm2
from formulation.specs.template import ArchTemplate, Hardware
from formulation.model.validation import mapping_violations
from formulation.pareto import non_dominated
from search.design import Design, Evaluated, Goal, exceeds
from search.optimize import CANONICAL_ORDERS
from search.rounding import repair
from search.tiling import layer_primes

# Loop orders a genome can choose per level, innermost first: the three canonical ones of
# search.optimize and five more that put other reuse patterns innermost.
ORDERS: tuple[tuple[Dim, ...], ...] = (
    CANONICAL_ORDERS["output-stationary"],                      # R S C K P Q N
    CANONICAL_ORDERS["weight-stationary"],                      # P Q N R S C K
    CANONICAL_ORDERS["input-stationary"],                       # K R S C P Q N
    (Dim.R, Dim.P, Dim.S, Dim.Q, Dim.C, Dim.K, Dim.N),          # row-stationary-like: sliding windows innermost
    (Dim.C, Dim.K, Dim.R, Dim.S, Dim.P, Dim.Q, Dim.N),          # channels innermost (GEMM-like)
    (Dim.Q, Dim.P, Dim.N, Dim.K, Dim.C, Dim.S, Dim.R),          # weight-stationary, output channels next
    (Dim.K, Dim.P, Dim.Q, Dim.N, Dim.C, Dim.R, Dim.S),          # input-stationary, pixels next
    (Dim.S, Dim.R, Dim.C, Dim.P, Dim.Q, Dim.K, Dim.N),          # output-stationary, pixels before channels
)
_ORDER_TABLE = np.array([[int(d) for d in order] for order in ORDERS], dtype=np.int64)
assert len({tuple(o) for o in ORDERS}) == len(ORDERS) and all(sorted(o) == list(DIMS) for o in ORDERS)

PENALTY_F = 1e6  # objective value given to designs not sent to the model (hardware over the area budget)


def legal_sizes(lo: int, hi: int) -> np.ndarray:
    """Legal buffer sizes in ``[lo, hi]``: the powers of two inside, plus ``lo`` and ``hi`` themselves."""
    powers = [2 ** k for k in range(int(math.ceil(math.log2(lo))), int(math.floor(math.log2(hi))) + 1)]
    return np.array(sorted({lo, hi, *(p for p in powers if lo <= p <= hi)}), dtype=np.int64)


def pinned_template(template: ArchTemplate) -> ArchTemplate:
    """The template restricted to one hardware point: its base hardware moved onto the legal grid."""
    base = template.base_hardware()
    mx = int(np.clip(base.mesh_x, *template.mesh_x_range))
    my = int(np.clip(base.mesh_y, *template.mesh_y_range))
    sizes = []
    for name, lo, hi in template.size_ranges:
        values = legal_sizes(lo, hi)
        target = math.log(base.size_of(name))
        sizes.append((name, int(values[np.argmin(np.abs(np.log(values) - target))])))
    return replace(template, mesh_x_range=(mx, mx), mesh_y_range=(my, my),
                   size_ranges=tuple((name, s, s) for name, s in sizes))


class ParetoArchive:
    """The non-dominated designs (power, latency) seen so far, one per distinct point."""

    def __init__(self) -> None:
        self.points = np.zeros((0, 2))
        self.designs: list[Evaluated] = []

    def add(self, points: np.ndarray, make: Callable[[int], Evaluated]) -> None:
        """Offer candidate points ``[n, 2]`` (infinite rows are ignored); ``make(j)`` builds candidate ``j``."""
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        combined = np.concatenate([self.points, points])
        keep = np.sort(non_dominated(combined))
        old = len(self.points)
        self.designs = [self.designs[k] if k < old else make(int(k - old)) for k in keep]
        self.points = combined[keep]

    def add_evaluated(self, designs: list[Evaluated]) -> None:
        pts = np.array([[d.score.power_mW, d.score.latency_s] if d.score.feasible else [np.inf, np.inf]
                        for d in designs]).reshape(-1, 2)
        self.add(pts, lambda j: designs[j])

    def front(self) -> tuple[Evaluated, ...]:
        """The designs, fastest first."""
        order = np.argsort(self.points[:, 1], kind="stable")
        return tuple(self.designs[k] for k in order)

    def best(self, goal: Goal) -> Evaluated | None:
        if not self.designs:
            return None
        return min(self.front(), key=lambda d: d.score.value(goal.objective))


@dataclass(frozen=True)
class _LayerGenes:
    start: int           # first gene of the layer
    item_dim: np.ndarray  # per prime item: its dimension
    item_prime: np.ndarray
    order_start: int
    keep_start: int
    keep_pairs: tuple[tuple[int, int], ...]  # (level, tensor) with a keep bit
    stop: int


class DesignSpace:
    """The integer genome of whole-network designs (see the module docstring)."""

    def __init__(self, network: Network, template: ArchTemplate, fixed_hardware: bool = False):
        self.network = network
        self.template = pinned_template(template) if fixed_hardware else template
        t = self.template
        self.mesh_x_values = np.arange(t.mesh_x_range[0], t.mesh_x_range[1] + 1, dtype=np.int64)
        self.mesh_y_values = np.arange(t.mesh_y_range[0], t.mesh_y_range[1] + 1, dtype=np.int64)
        self.size_names = tuple(name for name, _, _ in t.size_ranges)
        self.size_values = tuple(legal_sizes(lo, hi) for _, lo, hi in t.size_ranges)
        self.n_hw = 2 + len(self.size_names)
        self.levels = levels = len(t.base.levels)
        self.fanout_level = t.array_fanout_level
        if t.base.fanout(self.fanout_level) != (t.base.mac.mesh_x, t.base.mac.mesh_y):
            raise SpecError(f"template {t.name}: the fanout of level {t.base.levels[self.fanout_level].name} is "
                            f"{t.base.fanout(self.fanout_level)}, not the PE mesh: the genome has no slot for it")
        self.n_slots = levels + 2  # temporal per level, then X and Y at the fanout level
        upper = [len(self.mesh_x_values) - 1, len(self.mesh_y_values) - 1] + [len(v) - 1 for v in self.size_values]
        self.layers: list[_LayerGenes] = []
        for entry in network.layers:
            start = len(upper)
            items = layer_primes(entry.layer)
            upper += [self.n_slots - 1] * len(items)
            order_start = len(upper)
            upper += [len(ORDERS) - 1] * levels
            keep_start = len(upper)
            pairs = tuple((l, int(tn)) for l in range(1, levels) for tn in TENSORS if tn in t.base.levels[l].keeps)
            upper += [1] * len(pairs)
            self.layers.append(_LayerGenes(start, np.array([d for d, _ in items], dtype=np.int64),
                                           np.array([p for _, p in items], dtype=np.int64),
                                           order_start, keep_start, pairs, len(upper)))
        self.n_var = len(upper)
        self.xl = np.zeros(self.n_var, dtype=np.int64)
        self.xu = np.array(upper, dtype=np.int64)
        self.ordinal = np.zeros(self.n_var, dtype=bool)  # hardware genes; the rest are categorical
        self.ordinal[:self.n_hw] = True
        self.counts = np.array([entry.count for entry in network.layers], dtype=float)
        self._arch_cache: dict[tuple, tuple[Architecture, float]] = {}

    # ---- hardware -----------------------------------------------------------------------------
    def hardware(self, genes: np.ndarray) -> Hardware:
        g = np.asarray(genes)
        return Hardware(int(self.mesh_x_values[g[0]]), int(self.mesh_y_values[g[1]]),
                        tuple((name, int(values[g[2 + j]]))
                              for j, (name, values) in enumerate(zip(self.size_names, self.size_values))))

    def arch_and_area(self, hw_genes: np.ndarray) -> tuple[Architecture, float]:
        key = tuple(int(v) for v in hw_genes[:self.n_hw])
        if key not in self._arch_cache:
            arch = self.template.instantiate(self.hardware(np.array(key)))
            self._arch_cache[key] = (arch, architecture_area_mm2(arch))
        return self._arch_cache[key]

    def min_area_mm2(self) -> float:
        return self.arch_and_area(np.zeros(self.n_hw, dtype=np.int64))[1]

    def fits_budget(self, hw_genes: np.ndarray, goal: Goal) -> bool:
        return not exceeds(self.arch_and_area(hw_genes)[1], goal.area_budget_mm2)

    # ---- sampling -----------------------------------------------------------------------------
    def sample_hardware(self, n: int, rng: np.random.Generator, goal: Goal | None = None,
                        max_rounds: int = 1000) -> np.ndarray:
        """``n`` hardware gene rows, uniform over the legal grid, drawn within the area budget when possible.

        Rejection: rows over the budget are redrawn (up to ``max_rounds`` rounds); whatever is
        still over the budget then stays (the caller sees it as infeasible).
        """
        hi = self.xu[:self.n_hw] + 1
        out = rng.integers(0, hi, size=(n, self.n_hw))
        if goal is None or goal.area_budget_mm2 is None:
            return out
        for _ in range(max_rounds):
            bad = np.array([not self.fits_budget(row, goal) for row in out])
            if not bad.any():
                break
            out[bad] = rng.integers(0, hi, size=(int(bad.sum()), self.n_hw))
        return out

    def sample(self, n: int, rng: np.random.Generator, goal: Goal | None = None,
               hardware: np.ndarray | None = None) -> np.ndarray:
        """``n`` random genomes ``[n, n_var]`` (not yet legalized): every gene uniform over its values.

        Hardware genes come from :meth:`sample_hardware` (within ``goal``'s area budget when possible)
        unless ``hardware`` gives one row (shared by all) or ``n`` rows.
        """
        genes = rng.integers(self.xl, self.xu + 1, size=(n, self.n_var))
        if hardware is None:
            genes[:, :self.n_hw] = self.sample_hardware(n, rng, goal)
        else:
            genes[:, :self.n_hw] = np.broadcast_to(np.asarray(hardware)[..., :self.n_hw], (n, self.n_hw))
        return genes

    # ---- decode / encode ----------------------------------------------------------------------
    def _fanouts(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the (X, Y) fanout into the PE array: the mesh sides."""
        return self.mesh_x_values[genes[:, 0]], self.mesh_y_values[genes[:, 1]]

    def decode_layer(self, genes: np.ndarray, i: int) -> MappingArrays:
        """Layer ``i``'s mappings of a batch of genomes ``[B, n_var]`` (spatial factors fit; capacity unchecked)."""
        genes = np.asarray(genes, dtype=np.int64)
        lg = self.layers[i]
        b, levels, fl = genes.shape[0], self.levels, self.fanout_level
        rows = np.arange(b)
        fan_x, fan_y = self._fanouts(genes)
        factors = np.ones((b, self.n_slots, N_DIMS), dtype=np.int64)  # slot rows: temporal l, then X, Y
        for k, (d, p) in enumerate(zip(lg.item_dim, lg.item_prime)):
            slot = genes[:, lg.start + k].copy()
            x_used, y_used = factors[:, levels].prod(axis=1), factors[:, levels + 1].prod(axis=1)
            bad_x = (slot == levels) & ((x_used * p > fan_x) | (factors[:, levels + 1, d] > 1))
            bad_y = (slot == levels + 1) & ((y_used * p > fan_y) | (factors[:, levels, d] > 1))
            slot[bad_x | bad_y] = fl
            factors[rows, slot, d] *= p
        temporal = np.ascontiguousarray(factors[:, :levels])
        sx = np.ones_like(temporal)
        sy = np.ones_like(temporal)
        sx[:, fl] = factors[:, levels]
        sy[:, fl] = factors[:, levels + 1]
        order = _ORDER_TABLE[genes[:, lg.order_start:lg.keep_start]]
        keep = np.zeros((b, levels, N_TENSORS), dtype=bool)
        keep[:, 0] = True
        for j, (l, tn) in enumerate(lg.keep_pairs):
            keep[:, l, tn] = genes[:, lg.keep_start + j] == 1
        return MappingArrays(temporal, sx, sy, order, keep)

    def encode_layer(self, arrays: MappingArrays, i: int) -> np.ndarray:
        """The genes of layer ``i`` for a batch of mappings (canonical: equal primes fill slots in slot order)."""
        lg = self.layers[i]
        b, levels, fl = arrays.size, self.levels, self.fanout_level
        rows = np.arange(b)
        spatial_elsewhere = np.delete(arrays.spatial, fl, axis=1) if levels > 1 else np.ones((b, 0, N_DIMS))
        if (spatial_elsewhere > 1).any():
            raise SpecError("encode: a spatial factor outside the PE-array fanout has no gene")
        rem = np.concatenate([arrays.temporal, arrays.spatial_x[:, fl:fl + 1], arrays.spatial_y[:, fl:fl + 1]],
                             axis=1).astype(np.int64)
        out = np.zeros((b, lg.stop - lg.start), dtype=np.int64)
        for k, (d, p) in enumerate(zip(lg.item_dim, lg.item_prime)):
            divisible = rem[:, :, d] % p == 0
            if not divisible.any(axis=1).all():
                raise SpecError(f"encode: layer {self.network.layers[i].layer.name} factors do not multiply "
                                f"to its loop bounds")
            slot = np.argmax(divisible, axis=1)
            rem[rows, slot, d] //= p
            out[:, k] = slot
        order_genes = np.zeros((b, levels), dtype=np.int64)
        for l in range(levels):
            match = (arrays.order[:, l, None, :] == _ORDER_TABLE[None]).sum(axis=2)  # positions in agreement
            order_genes[:, l] = np.argmax(match, axis=1)
        out[:, lg.order_start - lg.start:lg.keep_start - lg.start] = order_genes
        for j, (l, tn) in enumerate(lg.keep_pairs):
            out[:, lg.keep_start - lg.start + j] = arrays.keep[:, l, tn]
        return out

    def decode(self, genes: np.ndarray) -> Design:
        """The design of one genome as decoded (spatial factors fit; tiles may overflow: see :meth:`repair_design`)."""
        g = np.asarray(genes, dtype=np.int64)[None]
        return Design(self.hardware(g[0]), tuple(self.decode_layer(g, i) for i in range(len(self.layers))))

    def repair_design(self, design: Design) -> Design:
        """The legal design nearest ``design`` on its hardware (:func:`search.rounding.repair` per layer)."""
        arch = self.template.instantiate(design.hardware)
        return Design(design.hardware, tuple(_repair(entry.layer, arch, m)
                                             for entry, m in zip(self.network.layers, design.mappings)))

    def encode(self, design: Design) -> np.ndarray:
        """The genome of a design whose hardware is on the grid and whose spatial factors sit at the array fanout."""
        hw = design.hardware
        genes = np.zeros(self.n_var, dtype=np.int64)
        genes[0] = _index_of(self.mesh_x_values, hw.mesh_x)
        genes[1] = _index_of(self.mesh_y_values, hw.mesh_y)
        for j, (name, values) in enumerate(zip(self.size_names, self.size_values)):
            genes[2 + j] = _index_of(values, hw.size_of(name))
        for i, (lg, arrays) in enumerate(zip(self.layers, design.mappings)):
            genes[lg.start:lg.stop] = self.encode_layer(arrays, i)[0]
        return genes

    def legalize(self, genes: np.ndarray) -> np.ndarray:
        """The repair operator on a batch of genomes ``[B, n_var]``: the genomes of the repaired legal designs."""
        genes = np.clip(np.rint(np.asarray(genes)).astype(np.int64), self.xl, self.xu)
        if genes.shape[0] == 0:
            return genes
        out = genes.copy()
        _, group = np.unique(genes[:, :self.n_hw], axis=0, return_inverse=True)
        group = group.ravel()
        for i, (lg, entry) in enumerate(zip(self.layers, self.network.layers)):
            arrays = self.decode_layer(genes, i)
            fields = [arrays.temporal, arrays.spatial_x, arrays.spatial_y, arrays.order, arrays.keep]
            for h in np.unique(group):
                rows = np.flatnonzero(group == h)
                arch = self.arch_and_area(genes[rows[0]])[0]
                bad = rows[mapping_violations(entry.layer, arch, arrays.take(rows))]
                for r in bad:
                    fixed = _repair(entry.layer, arch, arrays.take(slice(r, r + 1)))
                    for f, v in zip(fields, (fixed.temporal, fixed.spatial_x, fixed.spatial_y, fixed.order,
                                            fixed.keep)):
                        f[r] = v[0]
            out[:, lg.start:lg.stop] = self.encode_layer(MappingArrays(*fields), i)
        return out


def _index_of(values: np.ndarray, value: int) -> int:
    """Index of ``value`` among the legal ``values`` (the nearest one in log terms if it is not legal)."""
    return int(np.argmin(np.abs(np.log(values) - math.log(value))))


def _repair(layer: Layer, arch: Architecture, arrays: MappingArrays) -> MappingArrays:
    """:func:`search.rounding.repair`; if a buffer cannot hold one element of what it keeps, bypass below the top."""
    try:
        return repair(layer, arch, arrays)
    except SpecError:
        keep = arrays.keep.copy()
        keep[:, 1:] = False
        return repair(layer, arch, replace(arrays, keep=keep))


__all__ = ["ORDERS", "DesignSpace", "ParetoArchive", "legal_sizes", "pinned_template"]
