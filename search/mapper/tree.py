"""The exact mapper's branch and bound: one search's state, its nodes and its incumbent.

:func:`search.mapper.mapper.map_layer` drives it (seeds, time shares, spatial subspaces); this module
holds the tree search itself.

Search. Dimensions are assigned one at a time (largest number of factor placements first); a node
is a batch of partial tilings. Each child is bounded (:mod:`search.mapper.bounds`) and cut when its
bound reaches the incumbent (``"bound"``: no completion can be better than the best mapping already
found) or when it is the mirror image of a kept tiling (``"symmetric-xy"``, below); a partial child
the bound keeps is raised first to the least over its keep combinations of the loop orders chosen
jointly over the tensors, with the refetch full and small buffers force
(:mod:`search.mapper.capacity`, :mod:`search.mapper.confinement`; a windowed input's order refetch,
:mod:`search.mapper.window_refetch`), the throttled levels' cycles and
the splits of the free fanout (:mod:`search.mapper.partial_orders`). Nodes are
explored depth first, the most promising batch first, which finds good incumbents; after half of
a finite time budget the open batch of least bound is expanded first instead, which raises the
certified lower bound. A complete tiling is expanded into its
mappings (:mod:`search.mapper.leaves`: one loop order per class of equal counts, legal keep sets
only, keep sets whose chain bound reaches the incumbent cut) and scored in large batches; its
own bound is the least over its keep sets whose tiles fit together
(:meth:`search.mapper.leaves.LeafExpander.fitting_keep_bounds`: every mapping of the tiling has
one of them). The
incumbent starts as a descended random mapping (:mod:`search.mapper.seed`).

Symmetry (``"symmetric-xy"``). At a level whose fanout is square (``FX = FY``) and when no link
transfer is possible (the input has no sliding window, :func:`search.mapper.space.windowed_axes`:
at a fanout onto a storage level links need a delta that moves by less than the fanout's span,
which only an axis moved by two dimensions of bound > 1 allows, :mod:`formulation.model.links`
"Which rows can link"; and the last storage level has no fanout into the MACs, where operands
that do not move are forwarded for every tensor),
swapping every X factor with the Y factor of the same dimension (and the X and Y spatial orders)
gives a legal mapping with identical counts: without links the model reads spatial factors only as
``x * y`` (``build_nest``, ``distinct_children``, ``reduction_factor``) and the fanout limits are
the same. Of each mirror pair only the one whose X factors, read in assignment order, are
lexicographically >= its Y factors is kept (a tiling equal to its mirror is kept).

Certificate. When the stack empties every mapping was evaluated or cut by a safe rule:
``optimal``. When the time budget ends first, the lower bound is the least bound over the nodes
still on the stack (and the incumbent), valid since every uncut mapping belongs to one of them.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from formulation.axes import DIMS, N_DIMS
from formulation.goals import Objective
from formulation.model.encoding import MappingArrays
from formulation.model.exact import evaluate_batch
from formulation.pareto import non_dominated
from formulation.specs.types import Architecture, Layer
from search.mapper.bounds import BoundModel, objective_of
from search.mapper.counting import Completions
from search.mapper.leaves import RULE_BOUND, RULE_SYMMETRY, RULES, LeafExpander
from search.mapper.partial_orders import PARTIAL_CYCLES, PARTIAL_ORDERS, partial_order_bounds
from search.mapper.space import Space, space_for
from search.mapper.spatial import SpatialQueue

MAX_ROWS = 20_000        # partial tilings expanded at once
#: An expansion is cut to whole parent rows expected to take at most this share of the time left
#: (:meth:`_Search.run`, from the seconds per child row measured at the same depth), between
#: :data:`EXPAND_MIN_S` and :data:`EXPAND_MAX_S`: on a 64x64 array one expansion of 14,000 children
#: of ResNet-18's layer1_3x3 took 15-80 s, far past a 10-s budget.
EXPAND_SHARE = 0.1
EXPAND_MIN_S = 0.2
EXPAND_MAX_S = 2.0
EVAL_CHUNK = 16_384      # mappings scored per evaluate_batch call
#: A search scores the mappings of its first complete tiling at once, then batches twice as large each
#: time up to :data:`EVAL_CHUNK` (:meth:`_Search.flush`): measured on MobileNetV2's expand_96_576_14
#: on eyeriss-like, the first tiling reached held the optimum, which a full batch left unscored for 6 s.
FIRST_FLUSH = 1
LEAF_CHUNK = 64          # complete tilings whose keep-set and order bounds are computed at once
#: Relative tolerance of "optimal": the bounds carry a floating-point slack of 1e-9 per factor
#: (:data:`search.mapper.bounds.SLACK`), so a bound that equals the incumbent reads slightly below
#: it; a node is cut when its bound is within ``TOL`` of the incumbent. No cut mapping is better
#: than the incumbent by more than this relative amount.
TOL = 1e-8


class _Incumbent:
    def __init__(self, objective: Objective, clock_GHz: float) -> None:
        self.objective, self.clock = objective, clock_GHz
        self.value = math.inf
        self.arrays: MappingArrays | None = None
        self.energy = math.inf
        self.cycles = 0
        self.front: list[tuple[float, int]] = []

    @property
    def cutoff(self) -> float:
        """Bounds at or above this are cut: the incumbent less the relative tolerance :data:`TOL`."""
        return self.value * (1 - TOL)

    def offer(self, layer: Layer, arch: Architecture, arrays: MappingArrays) -> int:
        """Score ``arrays`` with the exact model; keep the best legal one. Returns how many were scored."""
        for lo in range(0, arrays.size, EVAL_CHUNK):
            part = arrays.take(slice(lo, lo + EVAL_CHUNK))
            ev = evaluate_batch(layer, arch, part)
            values = np.where(ev.fits, objective_of(self.objective, ev.energy_pJ, ev.cycles, self.clock), np.inf)
            self._front(ev.energy_pJ[ev.fits], ev.cycles[ev.fits])
            j = int(np.argmin(values))
            if values[j] < self.value:
                self.value = float(values[j])
                self.arrays = part.take(slice(j, j + 1))
                self.energy, self.cycles = float(ev.energy_pJ[j]), int(ev.cycles[j])
        return arrays.size

    def _front(self, energy: np.ndarray, cycles: np.ndarray) -> None:
        if energy.size == 0:
            return
        e = np.concatenate([energy, [p[0] for p in self.front]])
        c = np.concatenate([cycles, [p[1] for p in self.front]])
        self.front = [(float(e[i]), int(c[i])) for i in non_dominated(np.column_stack([c, e]))]


class _Search:
    """State of one branch-and-bound run (see the module docstring)."""

    def __init__(self, layer, arch, objective, rules, deadline, switch, front: bool = False,
                 space: Space | None = None) -> None:
        self.layer, self.arch, self.objective, self.rules = layer, arch, objective, rules
        self.front = front
        self.deadline, self.switch = deadline, switch
        self.final_deadline = deadline
        self.row_seconds: dict[int, float] = {}  # depth -> seconds per child row (:meth:`_measured`)
        self.space = space_for(layer, arch) if space is None else space
        self.mapspace = self.space.size()
        self.bm = BoundModel(layer, arch, self.space)
        self.leaf = LeafExpander(self.space, rules, self.bm)
        self.L = self.space.levels
        opts = self.space.options
        self.fixed = [int(d) for d in DIMS if opts[d].count == 1]
        self.order = tuple(sorted((int(d) for d in DIMS if opts[d].count > 1), key=lambda d: -opts[d].count))
        self.counter = Completions(self.space, self.order)
        self.inc = _Incumbent(objective, arch.clock_GHz)
        self.spatial: SpatialQueue | None = None  # the whole-array subspaces still to search (map_layer)
        self.pruned: dict[str, int] = defaultdict(int)
        for r in RULES:
            self.pruned[r] += 0
        self.evaluated = 0
        self.buffer: list[MappingArrays] = []
        self.buffered = 0
        self.flush_at = FIRST_FLUSH
        sq = self.space.fan_x == self.space.fan_y
        self.sym_levels = np.flatnonzero(sq & (self.space.fan_x > 1)) if (rules.symmetry and not self.leaf.links_possible) \
            else np.zeros(0, dtype=np.int64)

    # ---- nodes -----------------------------------------------------------------------------------
    def root(self):
        L = self.L
        t = np.ones((1, L, N_DIMS), dtype=np.int64)
        sx, sy = t.copy(), t.copy()
        for d in self.fixed:
            o = self.space.options[d]
            t[:, :, d], sx[:, :, d], sy[:, :, d] = o.temporal[0], o.x[0], o.y[0]
        sym = np.zeros((1, L), dtype=np.int8)
        return (0, t, sx, sy, sym, np.zeros(1), np.zeros(1), np.zeros(1))

    def cut(self, lb: np.ndarray, energy_lb: np.ndarray, cycles_lb: np.ndarray) -> np.ndarray:
        """Which bounds cannot lead to a better answer: an objective bound at the incumbent (less
        :data:`TOL`), or, when proving the front, an (energy, cycles) bound that a mapping already
        found dominates (within :data:`TOL`): every completion is then dominated or equal."""
        if not self.front:
            return lb >= self.inc.cutoff
        if not self.inc.front:
            return np.zeros(len(lb), dtype=bool)
        pts = np.array(self.inc.front) * (1 - TOL)
        return ((energy_lb[:, None] >= pts[None, :, 0]) & (cycles_lb[:, None] >= pts[None, :, 1])).any(axis=1)

    def assigned(self, k: int) -> np.ndarray:
        mask = np.zeros(N_DIMS, dtype=bool)
        mask[self.fixed] = True
        mask[list(self.order[:k])] = True
        return mask

    def expand(self, node):
        """Children of a node batch, bounded, cut and sorted by bound (best first)."""
        k, t, sx, sy, sym = node[:5]
        d = self.order[k]
        o = self.space.options[d]
        b, f = t.shape[0], o.count
        rep = lambda a: np.repeat(a, f, axis=0)  # noqa: E731
        t2, sx2, sy2, sym2 = rep(t), rep(sx), rep(sy), rep(sym)
        t2[:, :, d] = np.tile(o.temporal, (b, 1))
        sx2[:, :, d] = np.tile(o.x, (b, 1))
        sy2[:, :, d] = np.tile(o.y, (b, 1))
        legal = ((sx2.prod(axis=2) <= self.space.fan_x) & (sy2.prod(axis=2) <= self.space.fan_y)).all(axis=1)
        t2, sx2, sy2, sym2 = t2[legal], sx2[legal], sy2[legal], sym2[legal]
        if len(self.sym_levels):
            lv = self.sym_levels
            cmp = np.sign(sx2[:, lv, d] - sy2[:, lv, d]).astype(np.int8)
            sym2[:, lv] = np.where(sym2[:, lv] == 0, cmp, sym2[:, lv])
            mirrored = (sym2[:, lv] < 0).any(axis=1)
            self.pruned[RULE_SYMMETRY] += self.counter.mappings(k + 1, sx2[mirrored], sy2[mirrored])
            t2, sx2, sy2, sym2 = t2[~mirrored], sx2[~mirrored], sy2[~mirrored], sym2[~mirrored]
        cutoff = None if (self.front or not self.rules.bound) else self.inc.cutoff
        bounds = self.bm.bounds(t2, sx2, sy2, self.assigned(k + 1), cutoff, self.objective)
        lb = bounds.value(self.objective, self.arch.clock_GHz)
        elb, clb = bounds.energy_pJ, bounds.cycles
        if PARTIAL_ORDERS and self.rules.bound and k + 1 < len(self.order) and len(t2):
            rows = np.flatnonzero(~self.cut(lb, elb, clb))  # partial tilings: the orders chosen jointly
            if len(rows):
                elb, clb = elb.copy(), clb.copy()
                e_ord, c_ord, edp_ord = partial_order_bounds(
                    self.leaf.order_energy, t2[rows], sx2[rows], sy2[rows], bounds.chain_cost[rows],
                    ~self.assigned(k + 1), bounds.mac_energy_pJ, self._can_beat(), clb[rows],
                    with_cycles=PARTIAL_CYCLES and self.objective is not Objective.ENERGY,
                    deadline=self.deadline + EXPAND_MAX_S)  # past it (a first, unmeasured expansion) weaker terms
                elb[rows], clb[rows] = np.maximum(elb[rows], e_ord), np.maximum(clb[rows], c_ord)
                lb = np.maximum(lb, objective_of(self.objective, elb, clb, self.arch.clock_GHz))
                if self.objective is Objective.EDP:
                    lb[rows] = np.maximum(lb[rows], objective_of(self.objective, edp_ord, 1.0, self.arch.clock_GHz))
        if k + 1 == len(self.order) and len(t2):  # complete tilings: the least over keep sets that fit
            for with_cycles in (False, True):  # energy first; the bandwidth terms for the rows left
                rows = np.flatnonzero(~self.cut(lb, elb, clb)) if self.rules.bound else None
                e_fit, c_fit, edp_fit = self.leaf.fitting_keep_bounds(t2, sx2, sy2, bounds, rows, with_cycles,
                                                                      self._can_beat())
                elb, clb = np.maximum(elb, e_fit), np.maximum(clb, c_fit)
                lb = np.maximum(lb, objective_of(self.objective, elb, clb, self.arch.clock_GHz))
                if self.objective is Objective.EDP:
                    lb = np.maximum(lb, objective_of(self.objective, edp_fit, 1.0, self.arch.clock_GHz))
        if self.rules.bound:
            cut = self.cut(lb, elb, clb)
            self.pruned[RULE_BOUND] += self.counter.mappings(k + 1, sx2[cut], sy2[cut])
            keep = ~cut
        else:
            keep = np.ones(len(lb), dtype=bool)
        idx = np.flatnonzero(keep)
        idx = idx[np.argsort(lb[idx], kind="stable")]
        return (k + 1, t2[idx], sx2[idx], sy2[idx], sym2[idx], lb[idx], elb[idx], clb[idx])

    # ---- leaves ----------------------------------------------------------------------------------
    def leaves(self, node) -> None:
        """Expand and score complete tilings, best bound first, until the bound reaches the incumbent.

        The per-keep-set and per-order bounds are computed for :data:`LEAF_CHUNK` rows at a time,
        as the rows are reached (most nodes are cut after a few)."""
        k, t, sx, sy, sym, lb, elb, clb = node
        start, end = 0, 0
        for i in range(t.shape[0]):
            if self.rules.bound and self.cut(lb[i:], elb[i:], clb[i:])[0]:
                if not self.front:  # sorted by bound: the rest is cut too
                    self.pruned[RULE_BOUND] += self.counter.mappings(k, sx[i:], sy[i:])
                    return
                self.pruned[RULE_BOUND] += self.counter.mappings(k, sx[i:i + 1], sy[i:i + 1])
                continue
            if time.monotonic() > self.deadline:
                self.flush()
                self.rest = (k, t[i:], sx[i:], sy[i:], sym[i:], lb[i:], elb[i:], clb[i:])
                return
            if i >= end:
                start, end = i, i + LEAF_CHUNK
                rows = slice(start, end)
                bounds = self.bm.bounds(t[rows], sx[rows], sy[rows], self.assigned(k))
                tiles = self.leaf.tiles(t[rows], sx[rows], sy[rows])
                keep_energy, keep_cycles, parts = self.leaf.keep_bounds(t[rows], sx[rows], sy[rows], bounds,
                                                                        rule2=self.rules.orders,
                                                                        can_beat=self._can_beat())
            r = i - start
            energy, cycles = keep_energy[r], keep_cycles[r]
            keep_lb = objective_of(self.objective, energy, cycles, self.arch.clock_GHz)
            keep_ok = ~self.cut(keep_lb, energy, cycles) if self.rules.bound else np.ones(len(keep_lb), dtype=bool)
            arrays, n = self.leaf.expand_tiling(t[i], sx[i], sy[i], tiles[r], keep_ok, self.pruned,
                                                self._energy_ok(bounds.mac_energy_pJ),
                                                None if parts is None else parts.row(r), bounds.cycles[r])
            if n:
                self.buffer.append(arrays)
                self.buffered += n
                if self.buffered >= self.flush_at:
                    self.flush()

    def _can_beat(self):
        """Which (energy, cycles) bounds (same shapes; energy with the MACs) can still beat the
        incumbent (:meth:`cut`); ``None`` without the bound rule."""
        if not self.rules.bound:
            return None

        def ok(energy: np.ndarray, cycles: np.ndarray) -> np.ndarray:
            value = objective_of(self.objective, energy, cycles, self.arch.clock_GHz)
            return ~self.cut(value.ravel(), energy.ravel(), cycles.ravel()).reshape(energy.shape)
        return ok

    def _energy_ok(self, mac_energy_pJ: float):
        """Which (energy bounds in pJ without the MACs, cycles bounds) of one tiling's mappings can
        still beat the incumbent (:meth:`_can_beat` with the MACs added and the cycles broadcast);
        ``None`` without the bound rule."""
        beat = self._can_beat()
        if beat is None:
            return None

        def ok(energy: np.ndarray, cycles: np.ndarray) -> np.ndarray:
            e = energy + mac_energy_pJ
            return beat(e, np.broadcast_to(cycles, e.shape))
        return ok

    def flush(self) -> None:
        if not self.buffer:
            return
        arrays = MappingArrays.concat(self.buffer)
        self.evaluated += self.inc.offer(self.layer, self.arch, arrays)
        self.buffer, self.buffered = [], 0
        self.flush_at = min(EVAL_CHUNK, 2 * self.flush_at)

    # ---- the loop --------------------------------------------------------------------------------
    def covered(self) -> float:
        """Fraction of the mapspace evaluated or cut so far."""
        return (self.evaluated + sum(self.pruned.values())) / self.mapspace

    def _parents_per_expansion(self, k: int, f: int, now: float) -> int:
        """How many parent rows of depth ``k`` (``f`` children each) one expansion takes: at most
        :data:`MAX_ROWS` children, and at most :data:`EXPAND_SHARE` of the time left by the seconds
        per child measured at this depth (none measured yet: no time limit on it)."""
        step = max(1, MAX_ROWS // f)
        per_row = self.row_seconds.get(k)
        if per_row and math.isfinite(self.deadline):
            budget = min(EXPAND_MAX_S, max(EXPAND_MIN_S, EXPAND_SHARE * (self.deadline - now)))
            step = min(step, max(1, int(budget / (per_row * f))))
        return step

    def _measured(self, k: int, children: int, seconds: float) -> None:
        """Seconds per child row at depth ``k``: the larger of the last measure and half the previous one."""
        if children:
            per_row = seconds / children
            self.row_seconds[k] = max(per_row, 0.5 * self.row_seconds.get(k, 0.0))

    def run(self, tick: Callable[[float], None] | None = None, stack: list | None = None):
        """Expand nodes until the stack is empty or the deadline; returns the open nodes (``stack``:
        go on from a previous run's open nodes)."""
        stack = [self.root()] if stack is None else stack
        self.rest = None
        n_dims = len(self.order)
        while stack:
            now = time.monotonic()
            if now > self.deadline:
                break
            if now > self.switch:  # raise the bound: expand the open node of least bound first
                node = stack.pop(min(range(len(stack)), key=lambda i: stack[i][5][0] if len(stack[i][5]) else math.inf))
            else:
                node = stack.pop()
            k, t = node[0], node[1]
            if self.rules.bound and len(node[5]):
                cut = self.cut(node[5], node[6], node[7])
                if cut.any():
                    self.pruned[RULE_BOUND] += self.counter.mappings(k, node[2][cut], node[3][cut])
                    node = (k,) + tuple(a[~cut] for a in node[1:])
                    t = node[1]
                if not len(node[5]):
                    continue
            if k == n_dims:
                self.leaves(node)
                if tick:
                    tick(self.covered())
                if self.rest is not None:
                    stack.append(self.rest)
                    break
                continue
            f = self.space.options[self.order[k]].count
            step = self._parents_per_expansion(k, f, now)
            if t.shape[0] > step:
                parts = [tuple(a[i:i + step] for a in node[1:]) for i in range(0, t.shape[0], step)]
                for p in reversed(parts):
                    stack.append((k,) + p)
                continue
            began = time.monotonic()
            child = self.expand(node)
            self._measured(k, t.shape[0] * f, time.monotonic() - began)
            if tick:
                tick(self.covered())
            n = child[1].shape[0]
            if n == 0:
                continue
            step = max(1, MAX_ROWS // 4)
            parts = [(child[0],) + tuple(a[i:i + step] for a in child[1:]) for i in range(0, n, step)]
            stack.extend(reversed(parts))
        self.flush()
        return stack


__all__ = ["TOL", "_Incumbent", "_Search"]
