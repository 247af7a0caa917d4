"""Checks that relate a mapping to its layer and architecture.

Loading calls :func:`validate_mapping` once; the model trusts what it is given afterwards. The
batched form :func:`mapping_violations` is what searches use to filter candidates cheaply.
"""

from __future__ import annotations

import math

import numpy as np

from formulation.axes import DIMS, TENSOR_NAMES, TENSORS, Dim
from formulation.model.encoding import MappingArrays, encode
from formulation.model.nest import axis_extents, build_nest
from formulation.axes import projection
from formulation.specs.types import Architecture, Layer, Mapping, SpecError


def validate_mapping(layer: Layer, arch: Architecture, mapping: Mapping) -> None:
    """Raise :class:`SpecError` naming the first field of ``mapping`` that is not legal.

    Legal means: one entry per storage level in order; for every dimension the product of all
    temporal and spatial factors equals the layer's bound (one group's bound when ``G > 1``); at
    every fanout the X factors fit the X fanout and the Y factors the Y fanout, and a dimension
    uses at most one mesh axis; every bounded level holds the tiles of the tensors it keeps.
    """
    if len(mapping.levels) != len(arch.levels):
        raise SpecError(f"mapping = {len(mapping.levels)} levels: architecture {arch.name} has {len(arch.levels)}")
    dims = layer.dims
    for d in DIMS:
        product = math.prod(lm.temporal[d] * lm.spatial[d] for lm in mapping.levels)
        if product != dims[d]:
            parts = " x ".join(f"{lm.target}:{lm.temporal[d] * lm.spatial[d]}" for lm in mapping.levels)
            raise SpecError(f"mapping factors of {d.name} = {parts} = {product}: must multiply to "
                            f"layer {layer.name} {d.name} = {dims[d]}")
    for i, (lm, level) in enumerate(zip(mapping.levels, arch.levels)):
        if lm.target != level.name:
            raise SpecError(f"mapping[{i}].target = {lm.target!r}: expected {level.name!r}")
        fan_x, fan_y = arch.fanout(i)
        both = [d.name for d in DIMS if lm.spatial_x[d] > 1 and lm.spatial_y[d] > 1]
        if both:
            raise SpecError(f"mapping[{lm.target}].spatial {both[0]} = on X and Y: a dimension uses one mesh axis")
        px, py = math.prod(lm.spatial_x), math.prod(lm.spatial_y)
        if px > fan_x:
            raise SpecError(f"mapping[{lm.target}].spatial X = {px}: exceeds the X fanout {fan_x} to the next level")
        if py > fan_y:
            raise SpecError(f"mapping[{lm.target}].spatial Y = {py}: exceeds the Y fanout {fan_y} to the next level")
        extra = lm.keep - level.keeps
        if extra:
            raise SpecError(f"mapping[{lm.target}].keep = {TENSOR_NAMES[min(extra)]!r}: the level cannot hold it")
    if mapping.levels[0].keep != frozenset(TENSORS):
        raise SpecError(f"mapping[{mapping.levels[0].target}].keep = "
                        f"{sorted(TENSOR_NAMES[t] for t in mapping.levels[0].keep)}: the outermost level keeps all")
    used = capacity_used(layer, encode(mapping))[0]
    for lm, level, words in zip(mapping.levels, arch.levels, used):
        if level.size_words is not None and words > level.size_words:
            raise SpecError(f"mapping[{lm.target}] tiles = {int(words)} words: overflow {level.name} "
                            f"size {level.size_words}")


def capacity_used(layer: Layer, arrays: MappingArrays) -> np.ndarray:
    """Words each level needs for the tiles it keeps, ``[b, l]`` (input tiles include the halo)."""
    proj = projection(layer.Wstride, layer.Hstride, layer.Wdilation, layer.Hdilation)
    spans = axis_extents(build_nest(arrays), proj)
    levels = arrays.temporal.shape[1]
    return (spans[:, :levels].prod(axis=-1) * arrays.keep).sum(axis=2)


def mapping_violations(layer: Layer, arch: Architecture, arrays: MappingArrays) -> np.ndarray:
    """Batched legality: ``True`` where a mapping breaks a rule of :func:`validate_mapping`, ``[b]``."""
    dims = np.array(layer.dims)
    bad = ((arrays.temporal * arrays.spatial).prod(axis=1) != dims[None, :]).any(axis=1)
    for i in range(len(arch.levels)):
        fan_x, fan_y = arch.fanout(i)
        bad |= arrays.spatial_x[:, i].prod(axis=1) > fan_x
        bad |= arrays.spatial_y[:, i].prod(axis=1) > fan_y
        bad |= ((arrays.spatial_x[:, i] > 1) & (arrays.spatial_y[:, i] > 1)).any(axis=1)
    sizes = np.array([lv.size_words if lv.size_words is not None else np.iinfo(np.int64).max for lv in arch.levels])
    bad |= (capacity_used(layer, arrays) > sizes[None, :]).any(axis=1)
    return bad


__all__ = ["validate_mapping", "capacity_used", "mapping_violations", "Dim"]
