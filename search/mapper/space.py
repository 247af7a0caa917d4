"""The mapspace of one layer on fixed hardware: slots, per-dimension factorizations, its size.

A mapping (:class:`~formulation.specs.types.Mapping`) is, per storage level ``l``, a temporal
factor ``t_{l,d}``, spatial factors ``x_{l,d}``/``y_{l,d}`` on the fanout below ``l`` (mesh X and
Y), a permutation of the seven temporal loops, a spatial order and the set of tensors it keeps.
The *mapspace* is every such mapping that is structurally legal
(:func:`formulation.model.validation.validate_mapping` without the capacity check):

* for every dimension ``d``: ``prod_l t_{l,d} x_{l,d} y_{l,d} = D_d`` (perfect factorization);
* per level: ``prod_d x_{l,d} <= FX_l``, ``prod_d y_{l,d} <= FY_l`` (the fanout), and no
  dimension on both mesh axes of one level;
* any of the ``7!`` temporal permutations per level; any order of the spatial loops of each mesh
  axis (``n_x! n_y!`` distinct ones per level, ``n_x``/``n_y`` the dimensions with a factor > 1);
* keep: the outermost level keeps everything, every other level any subset of its hardware
  ``keeps``.

A *tiling* is the factor part. :class:`Space` lists, per dimension, every assignment of its
factors to the slots (``temporal`` at every level, ``x``/``y`` at every level whose fanout is > 1
along that axis) that respects the per-dimension rules; the fanout products couple dimensions and
are checked as dimensions are combined. :meth:`Space.size` counts the whole mapspace exactly (a
Python integer) by dynamic programming over the dimensions, tracking the fanout used so far.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from formulation.axes import DIMS, N_DIMS, TENSORS, Tensor
from formulation.specs.types import Architecture, Layer
from search.tiling import divisors


def ordered_factorizations(n: int, parts: int) -> list[tuple[int, ...]]:
    """Every ``parts``-tuple of positive integers whose product is ``n`` (order matters)."""
    if parts == 0:
        return [()] if n == 1 else []
    out = []
    for k in divisors(n):
        out.extend((k,) + rest for rest in ordered_factorizations(n // k, parts - 1))
    return out


def ordered_factorization_count(n: int, parts: int) -> int:
    """``len(ordered_factorizations(n, parts))`` without listing them: with ``n = prod_p p^a_p``, each prime's
    ``a_p`` factors are spread over the ``parts`` independently, ``C(a_p + parts - 1, parts - 1)`` ways
    (stars and bars)."""
    if parts == 0:
        return 1 if n == 1 else 0
    count, p = 1, 2
    while n > 1:
        a = 0
        while n % p == 0:
            n //= p
            a += 1
        count *= math.comb(a + parts - 1, parts - 1)
        p += 1
    return count


@dataclass(frozen=True)
class DimOptions:
    """The legal factor assignments of one dimension: ``temporal/x/y[k, l]`` for option ``k``."""

    temporal: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @property
    def count(self) -> int:
        return self.temporal.shape[0]


class Space:
    """The mapspace of ``layer`` on ``arch`` (module docstring)."""

    def __init__(self, layer: Layer, arch: Architecture) -> None:
        self.layer = layer
        self.arch = arch
        self.levels = len(arch.levels)
        self.dims = layer.dims
        self.fan_x = np.array([arch.fanout(l)[0] for l in range(self.levels)], dtype=np.int64)
        self.fan_y = np.array([arch.fanout(l)[1] for l in range(self.levels)], dtype=np.int64)
        self.keep_options = self._keep_options()
        self._size: int | None = None

    def _keep_options(self) -> list[list[frozenset[Tensor]]]:
        """Per level, the tensor sets it may keep (the outermost keeps all)."""
        out = [[frozenset(TENSORS)]]
        for lv in self.arch.levels[1:]:
            held = [t for t in TENSORS if t in lv.keeps]
            out.append([frozenset(c) for r in range(len(held) + 1) for c in itertools.combinations(held, r)])
        return out

    @cached_property
    def options(self) -> tuple[DimOptions, ...]:
        """Per dimension, every placement of its factors on the slots (fanout products checked per dimension only)."""
        x_levels = [l for l in range(self.levels) if self.fan_x[l] > 1]
        y_levels = [l for l in range(self.levels) if self.fan_y[l] > 1]
        slots = self.levels + len(x_levels) + len(y_levels)
        out = []
        for d in DIMS:
            rows_t, rows_x, rows_y = [], [], []
            for combo in ordered_factorizations(self.dims[d], slots):
                t = np.array(combo[:self.levels], dtype=np.int64)
                x = np.ones(self.levels, dtype=np.int64)
                y = np.ones(self.levels, dtype=np.int64)
                x[x_levels] = combo[self.levels:self.levels + len(x_levels)]
                y[y_levels] = combo[self.levels + len(x_levels):]
                if (x > self.fan_x).any() or (y > self.fan_y).any() or ((x > 1) & (y > 1)).any():
                    continue
                rows_t.append(t)
                rows_x.append(x)
                rows_y.append(y)
            out.append(DimOptions(np.array(rows_t), np.array(rows_x), np.array(rows_y)))
        return tuple(out)

    @cached_property
    def orders_per_level(self) -> int:
        return math.factorial(N_DIMS)

    @cached_property
    def keep_combinations(self) -> int:
        return math.prod(len(k) for k in self.keep_options)

    def size(self) -> int:
        """The number of mappings in the mapspace (exact; see the module docstring).

        Dynamic programming over the dimensions with state ``(prod x_l, prod y_l, n_x_l, n_y_l)``
        per level; each tiling is weighted by its distinct spatial orders ``prod_l n_x_l! n_y_l!``,
        and the total is multiplied by the temporal permutations and keep sets, which do not
        depend on the tiling. Computed once per space (it takes seconds on deep hierarchies).
        """
        if self._size is None:
            self._size = self.tilings_weighted() * self.orders_per_level ** self.levels * self.keep_combinations
        return self._size

    def hardness(self) -> int:
        """How many ways every dimension's factors can be placed on the slots, the fanout limits left out: an
        upper bound on the tilings that takes microseconds, a measure of how long the layer's search takes
        (:mod:`search.mapper.schedule` starts the hardest first; on ResNet-18, MobileNetV2 and BERT-base it
        ranks the layers almost as :meth:`size` does)."""
        slots = self.levels + int((self.fan_x > 1).sum()) + int((self.fan_y > 1).sum())
        return math.prod(ordered_factorization_count(int(self.dims[d]), slots) for d in DIMS)

    def tilings_weighted(self) -> int:
        """Sum over tilings of their number of distinct spatial orders."""
        states: dict[tuple, int] = {self.start_state(): 1}
        for d in DIMS:
            states = self.advance(states, d)
        return sum(count * self.state_weight(state) for state, count in states.items())

    def start_state(self) -> tuple:
        return tuple((1, 1, 0, 0) for _ in range(self.levels))

    def state_weight(self, state: tuple) -> int:
        return math.prod(math.factorial(nx) * math.factorial(ny) for _, _, nx, ny in state)

    def advance(self, states: dict[tuple, int], d: int) -> dict[tuple, int]:
        """Combine the per-level fanout states with every option of dimension ``d``."""
        opts = self.options[d]
        out: dict[tuple, int] = {}
        for state, count in states.items():
            for k in range(opts.count):
                new = []
                for l, (px, py, nx, ny) in enumerate(state):
                    fx, fy = int(opts.x[k, l]), int(opts.y[k, l])
                    new.append((px * fx, py * fy, nx + (fx > 1), ny + (fy > 1)))
                if any(px > self.fan_x[l] or py > self.fan_y[l] for l, (px, py, _, _) in enumerate(new)):
                    continue
                key = tuple(new)
                out[key] = out.get(key, 0) + count
        return out


def windowed_axes(layer: Layer) -> tuple[bool, bool]:
    """``(W, H)``: whether the input's width/height axis is moved by two dimensions of bound > 1.

    The input width is indexed by ``Wstride * P + Wdilation * R``: with ``P = 1`` or ``R = 1``
    only one dimension ever moves it and it behaves like any single-dimension axis (tiles one
    stride apart never overlap). Same for the height with ``Q`` and ``S``.
    """
    return layer.P > 1 and layer.R > 1, layer.Q > 1 and layer.S > 1


@lru_cache(maxsize=32)
def space_for(layer: Layer, arch: Architecture) -> Space:
    """The :class:`Space` of ``layer`` on ``arch``, built once per process (its options and size take seconds
    on deep hierarchies; a search resumed in a worker (:mod:`search.mapper.resume`) finds it built)."""
    return Space(layer, arch)


__all__ = ["DimOptions", "Space", "ordered_factorization_count", "ordered_factorizations", "space_for",
           "windowed_axes"]
