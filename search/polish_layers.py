"""The per-layer candidates of polishing: each layer's mappings in other designs, made legal for this hardware.

Polishing (:mod:`search.polish`) runs the exact mapper on each layer of a design
(:func:`search.mapper.schedule.map_layers`, one process or several, in one time budget) started from the
design's own mapping and from the *transferred* mappings (:func:`transferred`: the same layer's mapping
in the other starts' designs, made legal for this hardware, as it is and mirrored). Its candidates for
the network combination are the design's own mapping, the transferred ones and the mapper's answers.
"""

from __future__ import annotations

import numpy as np

from formulation.model.encoding import MappingArrays, decode, encode
from formulation.model.validation import mapping_violations
from formulation.specs.types import Architecture, Layer, SpecError


def stack(rows: list[MappingArrays], arch: Architecture | None = None) -> MappingArrays:
    """One batch from batches of mappings. Rows without a spatial order get their canonical one written out
    (through :func:`formulation.model.encoding.decode` on ``arch``) when others have one; without ``arch``
    the spatial orders are dropped unless every row has one."""
    if arch is not None and any(r.spatial_order is not None for r in rows):
        rows = [r if r.spatial_order is not None else
                stack([encode(decode(r, arch, k)) for k in range(r.size)]) for r in rows]
    return MappingArrays.concat(rows)


def mirrored(arrays: MappingArrays) -> MappingArrays:
    """``arrays`` with every spatial X factor swapped with its Y factor (the same dataflow on the transposed mesh)."""
    return MappingArrays(arrays.temporal.copy(), arrays.spatial_y.copy(), arrays.spatial_x.copy(),
                         arrays.order.copy(), arrays.keep.copy(), None)


def transferred(layer: Layer, arch: Architecture, own: MappingArrays,
                others: list[MappingArrays]) -> list[MappingArrays]:
    """Other designs' mappings of ``layer`` made legal on ``arch`` (:func:`search.rounding.repair`), each
    as it is and mirrored (X and Y swapped: another start may have found the transposed mesh), without
    duplicates of each other or of ``own``; the ones that cannot be repaired are left out."""
    from search.rounding import repair

    seen = {mapping_key(own)}
    out = []
    for other in others:
        for cand in (other, mirrored(other)):
            try:
                fixed = repair(layer, arch, cand.take(slice(0, 1)))
            except SpecError:
                continue
            key = mapping_key(fixed)
            if key in seen or mapping_violations(layer, arch, fixed).any():
                continue
            seen.add(key)
            out.append(fixed)
    return out


def mapping_key(arrays: MappingArrays) -> bytes:
    """The first mapping of ``arrays`` as bytes (factors, orders, keeps; not the spatial order): equal keys,
    equal mappings up to the spatial order."""
    return b"".join(np.ascontiguousarray(getattr(arrays, f)[0]).tobytes()
                    for f in ("temporal", "spatial_x", "spatial_y", "order", "keep"))


__all__ = ["mapping_key", "mirrored", "stack", "transferred"]
