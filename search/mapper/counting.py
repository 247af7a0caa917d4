"""Exact sizes of sub-spaces: how many mappings complete a partial tiling.

Dimensions are assigned in a fixed order ``dims[0], dims[1], ...``. The mappings completing a
partial tiling with the first ``k`` dimensions assigned are ``sum`` over the completions of the
remaining dimensions of their spatial orders ``prod_l n_x! n_y!``, times ``(7!)^L`` temporal
permutations and every keep combination; the sum depends only on the per-level fanout state
``(prod x, prod y, n_x, n_y)`` and is memoized on ``(k, state)``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from formulation.axes import N_DIMS
from search.mapper.space import Space


class Completions:
    def __init__(self, space: Space, dims: tuple[int, ...]) -> None:
        self.space = space
        self.dims = dims
        self.per_tiling = math.factorial(N_DIMS) ** space.levels * space.keep_combinations
        self._suffix = lru_cache(maxsize=None)(self._suffix_uncached)

    def _suffix_uncached(self, k: int, state: tuple) -> int:
        if k == len(self.dims):
            return self.space.state_weight(state)
        nxt = self.space.advance({state: 1}, self.dims[k])
        return sum(count * self._suffix(k + 1, s) for s, count in nxt.items())

    def states(self, sx: np.ndarray, sy: np.ndarray) -> list[tuple]:
        px, py = sx.prod(axis=2), sy.prod(axis=2)
        nx, ny = (sx > 1).sum(axis=2), (sy > 1).sum(axis=2)
        rows = np.stack([px, py, nx, ny], axis=2)  # [b, L, 4]
        return [tuple(tuple(int(v) for v in lv) for lv in row) for row in rows]

    def mappings(self, k: int, sx: np.ndarray, sy: np.ndarray) -> int:
        """Mappings completing each row (first ``k`` dimensions assigned), summed over the rows."""
        if sx.shape[0] == 0:
            return 0
        L = self.space.levels
        cols = [sx.prod(axis=2), sy.prod(axis=2), (sx > 1).sum(axis=2), (sy > 1).sum(axis=2)]
        radix = [self.space.fan_x + 1, self.space.fan_y + 1, np.full(L, N_DIMS + 1), np.full(L, N_DIMS + 1)]
        code = np.zeros(sx.shape[0], dtype=np.int64)
        for col, rad in zip(cols, radix):  # one integer per state: mixed radix over (level, field)
            for l in range(L):
                code = code * int(rad[l]) + col[:, l]
        uniq, first, counts = np.unique(code, return_index=True, return_counts=True)
        total = 0
        for i, c in zip(first, counts):
            state = tuple((int(cols[0][i, l]), int(cols[1][i, l]), int(cols[2][i, l]), int(cols[3][i, l]))
                          for l in range(L))
            total += int(c) * self._suffix(k, state)
        return total * self.per_tiling


__all__ = ["Completions"]
