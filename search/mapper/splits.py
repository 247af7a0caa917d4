"""How the fanout left to the free dimensions can be shared: the splits of the joint bound.

A partial tiling leaves the dimensions ``U`` free. In every completion each free dimension ``d``
takes some total spatial product ``z_d = prod_m x_{m,d} y_{m,d}`` over the fanouts (a divisor of
``D_d``: a free dimension has no factor yet), and the vector ``z`` must fit the fanout left at
every level, in X and in Y separately: ``prod_{d in U} x_{m,d} <= floor(FX_m / prod_assigned
x_m)`` and the same in Y. :meth:`SplitTable.of` enumerates, per set of free dimensions, every
such per-level placement of every free dimension (the placements :class:`search.mapper.space.Space`
allows, i.e. the ones a completion can use) together with the X and Y products it uses per
fanout level; a row's *signature* (its fanout left per level) then selects exactly the vectors
``z`` its completions can take (a placement fits iff its products fit: ``a b <= c`` iff
``b <= floor(c / a)``).

The bound (:mod:`search.mapper.bounds`, "Splits") needs from ``z`` only a few numbers per tensor,
its *key*: ``m_t = prod_{d in U, d not in Rel_t} z_d`` for Weights and Outputs; for Inputs the free
spatial product of ``K`` and, per window axis, the least ``z`` over the free dimensions of its
pair (the multicast of a windowed input, :func:`search.mapper.window.window_mac_words`),
with ``lo``/``hi`` the least/largest ``m_I`` over the vectors sharing that key (using the least for
a lower bound on replication and the largest for an upper bound on multicast is a relaxation
of each vector). A *split* is a distinct triple of keys; its total spatial product ``Z =
m_W m_O z_K`` (every dimension is irrelevant to exactly one of Weights (N, P, Q), Outputs
(C, R, S) and, for this count, Inputs (K)) is fixed by the triple.

Not :func:`formulation.bound.layer_terms.multicast_triples`: that one bounds a whole layer on one
mesh (every dimension free, one fanout, upper bounds only); this one works on partial tilings
with per-level fanouts partly used, and needs lower bounds on replication next to the upper
bounds on multicast, so it keeps the per-tensor keys instead of three products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from formulation.axes import DIMS, N_DIMS, Dim, Tensor
from search.mapper.space import Space


#: Most candidate placement vectors built at once per set of free dimensions (a few thousand are
#: kept on the built-in architectures); past it the bound is taken without the split (weaker, valid).
MAX_SPLIT_ROWS = 2_000_000


@dataclass(frozen=True)
class TensorKeys:
    """Per key of one tensor: ``lo``/``hi`` bound ``m_t`` (the free spatial product of the
    dimensions irrelevant to it, over all fanouts); ``zk`` bounds the free spatial product of K
    and ``win[:, a]`` that of window axis ``a``'s pair (inputs with a window only; inf: no
    dimension of the pair free); ``win_lo[:, a]``, where given, is at most the ``z`` of every free
    dimension of that pair (a split's own least ``z``; ``None``: no lower bound but 1)."""

    lo: np.ndarray
    hi: np.ndarray
    zk: np.ndarray
    win: np.ndarray
    win_lo: np.ndarray | None = None

    @property
    def count(self) -> int:
        return len(self.lo)

    def take(self, idx: np.ndarray) -> TensorKeys:
        return TensorKeys(self.lo[idx], self.hi[idx], self.zk[idx], self.win[idx],
                          None if self.win_lo is None else self.win_lo[idx])


@dataclass(frozen=True)
class Splits:
    """Splits for a batch: per tensor its keys, per split ``j`` the key of each tensor
    (``key[j, t]``) and its total free spatial product ``Z[j]``; ``allowed[b, j]`` whether row
    ``b``'s completions can take split ``j``."""

    keys: tuple[TensorKeys, ...]
    key: np.ndarray
    total: np.ndarray
    allowed: np.ndarray
    #: per split, its index in the :class:`SplitTable` it came from (``None``: the relaxed split)
    index: np.ndarray | None = None


class SplitTable:
    """Every placement vector of one set of free dimensions (module docstring), built once."""

    def __init__(self, z: np.ndarray, px: np.ndarray, py: np.ndarray, key: np.ndarray, total: np.ndarray,
                 keys: tuple[TensorKeys, ...], split_of_row: np.ndarray) -> None:
        self.z, self.px, self.py = z, px, py
        self.key, self.total, self.keys, self.split_of_row = key, total, keys, split_of_row

    @classmethod
    def of(cls, space: Space, free: np.ndarray, rel: np.ndarray, window_pairs: list[list[int]]) -> SplitTable | None:
        """Enumerate the placements of the free dimensions on the fanout levels of ``space``;
        ``None`` past :data:`MAX_SPLIT_ROWS` of them (the bound then goes without the split).

        ``rel`` is the bound's relevance (a windowed input's window dimensions count as
        irrelevant to it), ``window_pairs`` the dimensions moving each window axis.
        """
        fl = [l for l in range(space.levels) if space.fan_x[l] * space.fan_y[l] > 1]
        nf = len(fl)
        rows = np.ones((1, N_DIMS + 2 * nf), dtype=np.int64)
        fx, fy = space.fan_x[fl], space.fan_y[fl]
        for d in np.flatnonzero(free):
            o = space.options[d]
            place = np.unique(np.concatenate([o.x[:, fl], o.y[:, fl]], axis=1), axis=0)   # [n, 2F]
            if len(rows) * len(place) > MAX_SPLIT_ROWS:
                return None
            new = np.repeat(rows, len(place), axis=0)
            p = np.tile(place, (len(rows), 1))
            new[:, d] = (p[:, :nf] * p[:, nf:]).prod(axis=1)
            new[:, N_DIMS:N_DIMS + nf] *= p[:, :nf]
            new[:, N_DIMS + nf:] *= p[:, nf:]
            fits = (new[:, N_DIMS:N_DIMS + nf] <= fx).all(axis=1) & (new[:, N_DIMS + nf:] <= fy).all(axis=1)
            rows = np.unique(new[fits], axis=0)
        z = rows[:, :N_DIMS].astype(np.float64)
        px, py = rows[:, N_DIMS:N_DIMS + nf], rows[:, N_DIMS + nf:]
        cols, keys = [], []
        for t in (Tensor.W, Tensor.I, Tensor.O):
            m = np.where(free & ~rel[t], z, 1.0).prod(axis=1)
            if t == Tensor.I:
                zk = z[:, Dim.K] if free[Dim.K] else np.ones(len(z))
                win = np.stack([np.where(free[pair], z[:, pair], np.inf).min(axis=1) for pair in window_pairs],
                               axis=1) if window_pairs else np.zeros((len(z), 0))
                ident = np.concatenate([zk[:, None], win], axis=1)
            else:
                ident = m[:, None]
            uniq, inv = np.unique(ident, axis=0, return_inverse=True)
            inv = inv.ravel()
            lo = np.full(len(uniq), np.inf)
            hi = np.zeros(len(uniq))
            np.minimum.at(lo, inv, m)
            np.maximum.at(hi, inv, m)
            if t == Tensor.I:
                keys.append(TensorKeys(lo, hi, uniq[:, 0], uniq[:, 1:], uniq[:, 1:]))
            else:
                keys.append(TensorKeys(lo, hi, np.ones(len(uniq)), np.zeros((len(uniq), len(window_pairs)))))
            cols.append(inv)
        total = np.where(free, z, 1.0).prod(axis=1)
        tup, split_of_row = np.unique(np.stack(cols + [total], axis=1), axis=0, return_inverse=True)
        return cls(z, px, py, tup[:, :3].astype(np.int64), tup[:, 3], tuple(keys), split_of_row.ravel())

    def for_rows(self, capx: np.ndarray, capy: np.ndarray) -> Splits:
        """The splits rows with fanout left ``capx``/``capy`` (``[b, F]``, fanout levels) can take,
        restricted to those some row can take."""
        sig, inv = np.unique(np.concatenate([capx, capy], axis=1), axis=0, return_inverse=True)
        nf = capx.shape[1]
        fits = ((self.px[None] <= sig[:, None, :nf]).all(axis=2)
                & (self.py[None] <= sig[:, None, nf:]).all(axis=2))                       # [sig, rows]
        n_split = len(self.total)
        allowed_sig = np.zeros((len(sig), n_split), dtype=bool)
        for s in range(len(sig)):
            allowed_sig[s, self.split_of_row[fits[s]]] = True
        used = np.flatnonzero(allowed_sig.any(axis=0))
        key = self.key[used]
        keys = []
        for t in range(3):
            kept, remap = np.unique(key[:, t], return_inverse=True)
            keys.append(self.keys[t].take(kept))
            key[:, t] = remap.ravel()
        return Splits(tuple(keys), key, self.total[used], allowed_sig[inv.ravel()][:, used], used)

    def max_product(self, dims: np.ndarray) -> np.ndarray:
        """Per split of the table, the largest ``prod_{d in dims} z_d`` over the placement vectors it
        gathers (``dims`` a mask of free dimensions): at least that product of every completion
        taking the split (its own ``z`` is one of them)."""
        prod = np.where(np.asarray(dims, dtype=bool), self.z, 1.0).prod(axis=1)
        out = np.zeros(len(self.total))
        np.maximum.at(out, self.split_of_row, prod)
        return out


def window_pairs(proj: np.ndarray, window_axes: list[int]) -> list[list[int]]:
    """The dimensions moving each window axis of the input."""
    return [[int(d) for d in DIMS if proj[Tensor.I, a, d] != 0] for a in window_axes]


def relaxed_keys(free: np.ndarray, dims: np.ndarray, rel: np.ndarray, window_pairs_: list[list[int]]) -> Splits:
    """One split that relaxes all: ``m_t`` between 1 and the product of its free irrelevant
    bounds, ``z_d <= D_d``; every row may take it (the bound without the split)."""
    d = dims.astype(np.float64)
    keys = []
    for t in (Tensor.W, Tensor.I, Tensor.O):
        hi = np.where(free & ~rel[t], d, 1.0).prod()
        zk = d[Dim.K] if (t == Tensor.I and free[Dim.K]) else 1.0
        win = [np.where(free[p], d[p], np.inf).min() for p in window_pairs_] if t == Tensor.I \
            else [0.0] * len(window_pairs_)
        keys.append(TensorKeys(np.ones(1), np.array([hi]), np.array([zk]), np.array([win]).reshape(1, -1)))
    total = np.where(free, d, 1.0).prod()
    return Splits(tuple(keys), np.zeros((1, 3), dtype=np.int64), np.array([total]), None)


__all__ = ["SplitTable", "Splits", "TensorKeys", "relaxed_keys", "window_pairs"]
