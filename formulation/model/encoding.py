"""Mappings as arrays: the batch layout the vectorized model works on.

A batch of ``B`` mappings for one layer on one architecture with ``L`` storage levels is four
arrays, all indexed by :class:`~formulation.axes.Dim` and :class:`~formulation.axes.Tensor`:

* ``temporal[b, l, d]``, ``spatial_x[b, l, d]``, ``spatial_y[b, l, d]``: integer factors;
* ``order[b, l, k]``: the dimension of the ``k``-th temporal loop of level ``l``, innermost first;
* ``keep[b, l, t]``: whether level ``l`` holds tensor ``t``;
* optionally ``spatial_order[b, l, k]``: the dimensions of level ``l``'s spatial loops, innermost
  first, mesh-X ones first. Counts do not depend on it, except which PEs are mesh neighbours for
  link transfers (:mod:`formulation.model.links`); without it the canonical order is assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from formulation.axes import DIMS, N_DIMS, N_TENSORS, TENSORS, Dim
from formulation.specs.types import Architecture, LevelMapping, Mapping


@dataclass(frozen=True)
class MappingArrays:
    temporal: np.ndarray
    spatial_x: np.ndarray
    spatial_y: np.ndarray
    order: np.ndarray
    keep: np.ndarray
    spatial_order: np.ndarray | None = None

    @property
    def size(self) -> int:
        return self.temporal.shape[0]

    @property
    def spatial(self) -> np.ndarray:
        return self.spatial_x * self.spatial_y

    def take(self, index: np.ndarray | slice) -> MappingArrays:
        return MappingArrays(self.temporal[index], self.spatial_x[index], self.spatial_y[index],
                             self.order[index], self.keep[index],
                             None if self.spatial_order is None else self.spatial_order[index])


def encode(mappings: list[Mapping] | tuple[Mapping, ...] | Mapping) -> MappingArrays:
    """Stack mappings (all for the same architecture) into :class:`MappingArrays`."""
    if isinstance(mappings, Mapping):
        mappings = [mappings]
    levels = len(mappings[0].levels)
    temporal = np.array([[lm.temporal for lm in m.levels] for m in mappings], dtype=np.int64)
    spatial_x = np.array([[lm.spatial_x for lm in m.levels] for m in mappings], dtype=np.int64)
    spatial_y = np.array([[lm.spatial_y for lm in m.levels] for m in mappings], dtype=np.int64)
    order = np.array([[[int(d) for d in lm.permutation] for lm in m.levels] for m in mappings], dtype=np.int64)
    keep = np.array([[[t in lm.keep for t in TENSORS] for lm in m.levels] for m in mappings], dtype=bool)
    spatial_order = np.array([[[int(d) for d in lm.spatial_order] for lm in m.levels] for m in mappings],
                             dtype=np.int64)
    assert temporal.shape[1:] == (levels, N_DIMS) and keep.shape[2] == N_TENSORS
    return MappingArrays(temporal, spatial_x, spatial_y, order, keep, spatial_order)


def decode(arrays: MappingArrays, arch: Architecture, index: int = 0) -> Mapping:
    """The ``index``-th mapping of a batch as a :class:`Mapping` (spatial X dimensions listed first)."""
    levels = []
    for l, level in enumerate(arch.levels):
        sx = tuple(int(v) for v in arrays.spatial_x[index, l])
        sy = tuple(int(v) for v in arrays.spatial_y[index, l])
        if arrays.spatial_order is not None:
            listed = [Dim(int(d)) for d in arrays.spatial_order[index, l]]
        else:
            listed = list(DIMS)
        x_dims = tuple(d for d in listed if sx[d] > 1)
        y_dims = tuple(d for d in listed if sy[d] > 1)
        rest = tuple(d for d in DIMS if d not in x_dims and d not in y_dims)
        levels.append(LevelMapping(
            target=level.name,
            temporal=tuple(int(v) for v in arrays.temporal[index, l]),
            permutation=tuple(Dim(int(d)) for d in arrays.order[index, l]),
            spatial_x=sx, spatial_y=sy,
            keep=frozenset(t for t in TENSORS if arrays.keep[index, l, t]),
            spatial_order=x_dims + y_dims + rest))
    return Mapping(levels=tuple(levels))
