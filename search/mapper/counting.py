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
        uniq, counts = np.unique(np.concatenate([sx.prod(axis=2), sy.prod(axis=2), (sx > 1).sum(axis=2),
                                                 (sy > 1).sum(axis=2)], axis=1), axis=0, return_counts=True)
        L = self.space.levels
        total = 0
        for row, c in zip(uniq, counts):
            state = tuple((int(row[l]), int(row[L + l]), int(row[2 * L + l]), int(row[3 * L + l])) for l in range(L))
            total += int(c) * self._suffix(k, state)
        return total * self.per_tiling


__all__ = ["Completions"]
