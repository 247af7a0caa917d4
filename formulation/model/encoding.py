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

    @staticmethod
    def concat(parts: list[MappingArrays], spatial_order: bool = True) -> MappingArrays:
        """One batch of the ``parts``' mappings, in order. Spatial orders are kept when every part has them
        (and ``spatial_order``); otherwise the batch has none (each mapping then takes its canonical one)."""
        orders = [p.spatial_order for p in parts]
        return MappingArrays(*(np.concatenate([getattr(p, f) for p in parts]) for f in _ARRAY_FIELDS),
                             np.concatenate(orders) if spatial_order and all(o is not None for o in orders) else None)


_ARRAY_FIELDS = ("temporal", "spatial_x", "spatial_y", "order", "keep")
_PLAIN: dict[tuple, tuple[int, ...]] = {}  # dimension orders as plain ints (at most 7! of each)
_FLAGS: dict[frozenset, tuple[bool, ...]] = {}  # kept tensor sets as flags (at most 2^3)


def _plain(dims: tuple) -> tuple[int, ...]:
    got = _PLAIN.get(dims)
    if got is None:
        got = _PLAIN[dims] = tuple(int(d) for d in dims)
    return got


def _flags(keep: frozenset) -> tuple[bool, ...]:
    got = _FLAGS.get(keep)
    if got is None:
        got = _FLAGS[keep] = tuple(t in keep for t in TENSORS)
    return got


def encode(mappings: list[Mapping] | tuple[Mapping, ...] | Mapping) -> MappingArrays:
    """Stack mappings (all for the same architecture) into :class:`MappingArrays`.

    All integer fields go through one flat list of plain ints and one ``np.array`` call (the five
    arrays are contiguous views of it), the tensor flags through a second; dimension orders and
    tensor sets are converted once per distinct value (converting enum members is NumPy's slow path).
    """
    if isinstance(mappings, Mapping):
        mappings = [mappings]
    return encode_fields([[(lm.temporal, lm.permutation, lm.spatial_x, lm.spatial_y, lm.keep, lm.spatial_order)
                           for lm in m.levels] for m in mappings])


def encode_fields(rows: list) -> MappingArrays:
    """:func:`encode` of mappings given as their levels' field tuples ``(temporal, permutation,
    spatial_x, spatial_y, keep, spatial_order)`` (:func:`formulation.specs.loading.mapping_fields_from_list`)."""
    b = len(rows)
    levels = len(rows[0])
    temporal: list[int] = []
    sx: list[int] = []
    sy: list[int] = []
    order: list[int] = []
    sorder: list[int] = []
    kept: list[bool] = []
    for row in rows:
        for t, perm, x, y, keep, so in row:
            temporal += t
            sx += x
            sy += y
            order += _plain(perm)
            sorder += _plain(so)
            kept += _flags(keep)
    ints = np.array(temporal + sx + sy + order + sorder, dtype=np.int64).reshape(5, b, levels, N_DIMS)
    keep = np.array(kept, dtype=bool).reshape(b, levels, N_TENSORS)
    return MappingArrays(ints[0], ints[1], ints[2], ints[3], keep, ints[4])


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
