"""The model in log form with analytic gradients: what the NLP solvers differentiate.

Variables are the natural logs of the tiling factors, ``xt[l, d] = ln t_{l,d}`` (temporal) and
``xs[l, d] = ln s_{l,d}`` (spatial), flattened as ``z = [xt.ravel(), xs.ravel()]``, plus the
natural logs of the buffer sizes for the energy-per-access technology model. The discrete
choices (loop order, bypass, and which loops are *present*, i.e. may take a factor above one)
are fixed in a :class:`Structure`.

In log form the pure quantities are exponentials of linear forms, so their log-gradients are
constant 0/1 matrices built from the relevance matrix and the loop order:

* extents ``e_{l,d} = exp(sum_{m>=l} xt_{m,d} + xs_{m,d})``;
* instances ``n_l = exp(sum_{m<l} sum_d xs_{m,d})``;
* a tile spans ``E_{l,t,a} = 1 + sum_d A[t,a,d] (e_{l,d} - 1)`` along axis ``a`` (the only
  non-monomial term: the input halo) and holds ``prod_a E_{l,t,a}`` words;
* arrivals ``a_{l,t} = tile * prod_{j <= j*} f_j``, ``j*`` the innermost present loop above ``l``
  that moves ``t``. When ``j*`` is also the innermost present loop and slides a window by
  ``T < E`` along its axis, the halo is kept: ``a = prod_{j<j*} f_j (tile + (f_{j*} - 1)(tile - O))``
  with ``O = tile (E - T) / E``.
* reads, fills and updates compose arrivals exactly as :func:`formulation.model.exact.access_counts`
  does (multicast ``exp(sum of relevant spatial logs)``, spatial reduction over C, R, S).

At integer factors whose present loops are exactly those with a factor above one, the values
equal the exact model's counts except where Timeloop's walk gives extra partial reuse (a step
that translates a window exactly as the innermost loop does) or where spatial P and R share
input columns; there the relaxation is an upper bound. Link transfers between neighbouring PEs
(:mod:`formulation.model.links`) are not modelled, nor is the fanout-into-MACs hand-over
(same module, "Fanout into the MACs": MACs pass an unchanged operand to a mesh neighbour); that
rule only removes parent accesses, so the relaxed counts stay an upper bound where it applies,
and it depends on which MACs are mesh neighbours, which has no smooth form. Energies use ``count / block`` without
the ceiling. Gradients are propagated with the values by the chain rule (:class:`Smooth`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from formulation.axes import N_DIMS, N_TENSORS, REDUCTION_DIMS, Tensor, projection
from formulation.specs.types import Architecture, Layer, Mapping
from formulation.technology import energy_size_slope


@dataclass(frozen=True)
class Smooth:
    """A scalar with its gradient with respect to the variable vector ``z``."""

    value: float
    grad: np.ndarray

    def __add__(self, other: Smooth | float) -> Smooth:
        if isinstance(other, Smooth):
            return Smooth(self.value + other.value, self.grad + other.grad)
        return Smooth(self.value + other, self.grad)

    __radd__ = __add__

    def __sub__(self, other: Smooth | float) -> Smooth:
        return self + (-1.0) * other

    def __rsub__(self, other: float) -> Smooth:
        return (-1.0) * self + other

    def __mul__(self, other: Smooth | float) -> Smooth:
        if isinstance(other, Smooth):
            return Smooth(self.value * other.value, self.grad * other.value + other.grad * self.value)
        return Smooth(self.value * other, self.grad * other)

    __rmul__ = __mul__

    def __truediv__(self, other: Smooth | float) -> Smooth:
        if isinstance(other, Smooth):
            return Smooth(self.value / other.value,
                          (self.grad * other.value - other.grad * self.value) / other.value ** 2)
        return Smooth(self.value / other, self.grad / other)


POSITIVE_PART_EPS = 1e-6


class SmoothAlgebra:
    """Builds :class:`Smooth` numbers: values with gradients, for IPOPT's callbacks.

    :func:`relaxed_costs` only uses ``+ - * /``, :meth:`exp_linear`, :meth:`constant` and
    :meth:`positive_part`; the network formulation (:mod:`formulation.relaxed.formulation`) also
    :meth:`variables`, :meth:`exp` and :meth:`log`. Another algebra (one that builds Pyomo
    expressions, or one that records a tape) yields the same formulation.
    """

    def __init__(self, n: int):
        self.n = n

    def variables(self, values) -> list[Smooth]:
        """The ``n`` variables at ``values``: ``values[j]`` with the unit gradient ``e_j``."""
        return [Smooth(float(v), np.eye(1, self.n, j).ravel()) for j, v in enumerate(values)]

    def exp_linear(self, coeffs: np.ndarray, z: np.ndarray) -> Smooth:
        """``exp(coeffs . z)``, whose gradient is ``value * coeffs`` (``coeffs`` may cover a prefix of ``z``)."""
        c = np.zeros(self.n)
        c[:len(coeffs)] = coeffs
        value = float(np.exp(c @ np.asarray(z, dtype=float)[:self.n]))
        return Smooth(value, value * c)

    def exp(self, x: Smooth | float) -> Smooth:
        if not isinstance(x, Smooth):
            return self.constant(math.exp(x))
        value = math.exp(x.value)
        return Smooth(value, value * x.grad)

    def log(self, x: Smooth | float) -> Smooth:
        if not isinstance(x, Smooth):
            return self.constant(math.log(x))
        return Smooth(math.log(x.value), x.grad / x.value)

    def constant(self, value: float) -> Smooth:
        return Smooth(float(value), np.zeros(self.n))

    def positive_part(self, x: Smooth) -> Smooth:
        """``max(0, x)`` smoothed as ``(x + sqrt(x^2 + eps^2)) / 2`` with ``eps = 1e-6`` words."""
        root = float(np.sqrt(x.value ** 2 + POSITIVE_PART_EPS ** 2))
        return Smooth((x.value + root) / 2, x.grad * (1 + x.value / root) / 2)


def smooth_max(items: list[Smooth]) -> Smooth:
    """The largest item (its gradient is the active piece's)."""
    return max(items, key=lambda s: s.value)


@dataclass(frozen=True)
class Structure:
    """Discrete choices held fixed while factors vary: loop order, bypass, present loops."""

    order: np.ndarray    # [L, 7] dimensions innermost first
    keep: np.ndarray     # [L, 3] bool
    present: np.ndarray  # [L, 7] bool, indexed by dimension: the temporal loop may exceed one

    @staticmethod
    def from_mapping(mapping: Mapping, all_present: bool = False) -> Structure:
        order = np.array([[int(d) for d in lm.permutation] for lm in mapping.levels])
        keep = np.array([[t in lm.keep for t in Tensor] for lm in mapping.levels])
        temporal = np.array([lm.temporal for lm in mapping.levels])
        present = np.ones_like(temporal, dtype=bool) if all_present else temporal > 1
        return Structure(order, keep, present)


@dataclass(frozen=True)
class RelaxedCosts:
    """Smooth costs of one layer; counts are totals over instances, as in the exact model."""

    reads: dict[tuple[int, Tensor], Smooth]
    fills: dict[tuple[int, Tensor], Smooth]
    updates: dict[tuple[int, Tensor], Smooth]
    capacity_words: list[Smooth]     # per level: the kept tiles, words per instance
    energy_pJ: Smooth
    compute_cycles: Smooth
    bandwidth_cycles: list[Smooth]   # per bandwidth-limited port: words per instance / bandwidth
    n_vars: int

    @property
    def cycles(self) -> Smooth:
        """``max(compute, bandwidth cycles)``; formulations use an epigraph variable instead."""
        return smooth_max([self.compute_cycles, *self.bandwidth_cycles])


def pack(temporal: np.ndarray, spatial: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    return np.concatenate([np.log(temporal).ravel(), np.log(spatial).ravel(), np.log(sizes)])


def point_of(mapping: Mapping, arch: Architecture) -> np.ndarray:
    """The variable vector of an integer mapping (unbounded levels get size 1: no size term)."""
    temporal = np.array([lm.temporal for lm in mapping.levels], dtype=float)
    spatial = np.array([lm.spatial for lm in mapping.levels], dtype=float)
    sizes = np.array([lv.size_words or 1 for lv in arch.levels], dtype=float)
    return pack(temporal, spatial, sizes)


def relaxed_costs(layer: Layer, arch: Architecture, structure: Structure, z,
                  size_dependent_energy: bool = False, algebra=None) -> RelaxedCosts:
    """Values and gradients of counts, energy, cycles and buffer usage at ``z`` (see module docstring).

    With ``size_dependent_energy`` the architecture's energies are those at its current sizes and
    scale as ``(size / current size)^slope`` (:func:`formulation.technology.energy_size_slope`),
    which gives the gradient with respect to the log sizes ``ls``. ``algebra`` defaults to
    :class:`SmoothAlgebra` (values and gradients at the point ``z``); with an algebra over symbolic
    variables the same code writes the formulation's expressions.
    """
    levels = len(arch.levels)
    n = 2 * levels * N_DIMS + levels
    k = levels * N_DIMS
    proj = projection(layer.Wstride, layer.Hstride, layer.Wdilation, layer.Hdilation)
    alg = algebra if algebra is not None else SmoothAlgebra(n)

    def coeff_t(l: int, d: int) -> np.ndarray:
        c = np.zeros(n)
        c[l * N_DIMS + d] = 1.0
        return c

    def coeff_s(l: int, d: int) -> np.ndarray:
        c = np.zeros(n)
        c[k + l * N_DIMS + d] = 1.0
        return c

    # Extents e[l][d] (l = 0..L, row L = one MAC) as log-linear coefficient vectors.
    ext_coef = [[np.zeros(n) for _ in range(N_DIMS)] for _ in range(levels + 1)]
    for l in range(levels - 1, -1, -1):
        for d in range(N_DIMS):
            ext_coef[l][d] = ext_coef[l + 1][d] + coeff_t(l, d) + coeff_s(l, d)
    ext = [[alg.exp_linear(ext_coef[l][d], z) for d in range(N_DIMS)] for l in range(levels + 1)]
    inst_coef = [np.zeros(n)]
    for l in range(levels):
        inst_coef.append(inst_coef[-1] + sum(coeff_s(l, d) for d in range(N_DIMS)))
    inst = [alg.exp_linear(c, z) for c in inst_coef]

    def span(l: int, t: int, a: int) -> Smooth:
        out = alg.constant(1.0)
        for d in range(N_DIMS):
            if proj[t, a, d]:
                out = out + float(proj[t, a, d]) * (ext[l][d] - 1.0)
        return out

    spans = [[[span(l, t, a) for a in range(proj.shape[1])] for t in range(N_TENSORS)] for l in range(levels)]
    tiles = [[spans[l][t][0] * spans[l][t][1] * spans[l][t][2] * spans[l][t][3] for t in range(N_TENSORS)]
             for l in range(levels)]

    # The flattened nest, outermost first: (level, dim) of every present loop.
    loops = [(m, int(d)) for m in range(levels) for d in structure.order[m][::-1] if structure.present[m, int(d)]]

    def arrivals(l: int, t: int) -> Smooth:
        above = [(m, d) for m, d in loops if m < l]
        moving = [i for i, (m, d) in enumerate(above) if proj[t, :, d].any()]
        if not moving:
            return tiles[l][t]
        star = moving[-1]
        prefix = alg.exp_linear(sum((coeff_t(m, d) for m, d in above[:star]), np.zeros(n)), z)
        m, d = above[star]
        f = alg.exp_linear(coeff_t(m, d), z)
        axes = [a for a in range(proj.shape[1]) if proj[t, a, d]]
        window = len(axes) == 1 and np.count_nonzero(proj[t, axes[0]]) > 1 and star == len(above) - 1
        if not window:
            return prefix * f * tiles[l][t]
        a = axes[0]
        shift = float(proj[t, a, d]) * ext[m + 1][d] * alg.exp_linear(coeff_s(m, d), z)
        kept = alg.positive_part(spans[l][t][a] - shift) / spans[l][t][a]
        fresh = tiles[l][t] - tiles[l][t] * kept
        return prefix * (tiles[l][t] + (f - 1.0) * fresh)

    compute = alg.exp_linear(sum((coeff_t(m, d) for m in range(levels) for d in range(N_DIMS)), np.zeros(n)), z)
    arr = {(l, t): arrivals(l, t) for l in range(levels) for t in range(N_TENSORS) if structure.keep[l, t]}
    for t in range(N_TENSORS):
        arr[(levels, t)] = compute
    inst_all = inst[levels]

    def child(l: int, t: int) -> int:
        for c in range(l + 1, levels):
            if structure.keep[c, t]:
                return c
        return levels

    def fan_coef(l: int, c: int, dims) -> np.ndarray:
        return sum((coeff_s(m, d) for m in range(l, c) for d in dims), np.zeros(n))

    reads, fills, updates = {}, {}, {}
    zero = alg.constant(0.0)
    for l in range(levels):
        for t in Tensor:
            if not structure.keep[l, t]:
                continue
            c = child(l, t)
            relevant = [d for d in range(N_DIMS) if proj[t, :, d].any()]
            if t is not Tensor.O:
                fills[(l, t)] = inst[l] * arr[(l, t)] if l > 0 else zero
                distinct = alg.exp_linear(fan_coef(l, c, relevant), z)
                reads[(l, t)] = inst[l] * distinct * arr[(c, t)]
                updates[(l, t)] = zero
                continue
            above_rel = [(m, d) for m, d in loops if m < l and proj[t, :, d].any()]
            partition = tiles[l][t] * alg.exp_linear(sum((coeff_t(m, d) for m, d in above_rel), np.zeros(n)), z)
            reduction = alg.exp_linear(fan_coef(l, c, [int(d) for d in REDUCTION_DIMS]), z)
            drained = inst_all * compute if c == levels else inst[c] * arr[(c, t)]
            updates[(l, t)] = drained / reduction
            reads[(l, t)] = updates[(l, t)] - inst[l] * partition
            fills[(l, t)] = inst[l] * (arr[(l, t)] - partition) if l > 0 else zero

    energy = alg.constant(layer.macs * arch.mac.energy_pJ / layer.G)
    bandwidth = []
    capacity = []
    for l, lv in enumerate(arch.levels):
        scale = alg.constant(1.0)
        if size_dependent_energy and lv.size_words is not None:
            slope = energy_size_slope(lv.technology.value)
            c = np.zeros(n)
            c[2 * k + l] = slope
            scale = alg.exp_linear(c, z) * float(np.exp(-slope * np.log(lv.size_words)))
        level_energy = zero
        read_words = zero
        write_words = zero
        for t in Tensor:
            if (l, t) not in reads:
                continue
            level_energy = level_energy + (reads[(l, t)] * lv.read_energy_pJ + fills[(l, t)] * lv.fill_energy_pJ
                                           + updates[(l, t)] * lv.update_energy_pJ) / lv.block_size
            read_words = read_words + reads[(l, t)] / inst[l]
            write_words = write_words + (fills[(l, t)] + updates[(l, t)]) / inst[l]
        energy = energy + scale * level_energy
        if lv.read_bw_words is not None:
            bandwidth.append(read_words / lv.read_bw_words)
        if lv.write_bw_words is not None:
            bandwidth.append(write_words / lv.write_bw_words)
        capacity.append(sum((tiles[l][t] for t in range(N_TENSORS) if structure.keep[l, t]), zero))
    g = float(layer.G)
    return RelaxedCosts(
        reads={key: v * g for key, v in reads.items()}, fills={key: v * g for key, v in fills.items()},
        updates={key: v * g for key, v in updates.items()}, capacity_words=capacity, energy_pJ=energy * g,
        compute_cycles=compute * g, bandwidth_cycles=[b * g for b in bandwidth], n_vars=n)
