"""search.sampling: random mappings are legal, cover the mapping space, respect keeps, and are reproducible."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from formulation.axes import DIMS, N_DIMS, N_TENSORS, TENSORS, Tensor
from formulation.model.encoding import decode
from formulation.model.validation import mapping_violations, validate_mapping
from search.sampling import SamplingError, sample_mappings


def _case(reference_cases, layer_name: str, arch_name: str):
    for case in reference_cases:
        if case.layer.name == layer_name and case.arch.name == arch_name:
            return case.layer, case.arch
    raise AssertionError(f"no reference case for {layer_name} on {arch_name}")


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f))
               for f in ("temporal", "spatial_x", "spatial_y", "order", "keep"))


# (layer, arch, bypass): the two architectures named in the brief, with and without bypass.
SETTINGS = [
    ("resnet18_l1_3x3", "simple-16x16", True),
    ("resnet18_l1_3x3", "simple-16x16", False),
    ("resnet18_l2_3x3_s2", "simple-16x16", True),
    ("resnet18_l1_3x3", "eyeriss-like-12x14", True),
    ("small_c8k16p8r3", "eyeriss-like-12x14", False),
]


@pytest.mark.parametrize("layer_name,arch_name,bypass", SETTINGS)
def test_sampled_mappings_are_legal(reference_cases, layer_name, arch_name, bypass):
    layer, arch = _case(reference_cases, layer_name, arch_name)
    n = 400
    arrays = sample_mappings(layer, arch, n, np.random.default_rng(7), bypass=bypass)
    levels = len(arch.levels)
    assert arrays.size == n
    for name in ("temporal", "spatial_x", "spatial_y", "order"):
        value = getattr(arrays, name)
        assert value.shape == (n, levels, N_DIMS) and value.dtype == np.int64, name
    assert arrays.keep.shape == (n, levels, N_TENSORS) and arrays.keep.dtype == bool

    assert not mapping_violations(layer, arch, arrays).any()
    # the factors multiply to the layer's bounds, and every level's order is a permutation
    assert np.array_equal((arrays.temporal * arrays.spatial).prod(axis=1), np.tile(layer.dims, (n, 1)))
    assert np.array_equal(np.sort(arrays.order, axis=-1), np.broadcast_to(np.arange(N_DIMS), arrays.order.shape))
    # fanout capacity and one mesh axis per dimension and level, checked directly
    for l in range(levels):
        fan_x, fan_y = arch.fanout(l)
        assert (arrays.spatial_x[:, l].prod(axis=1) <= fan_x).all()
        assert (arrays.spatial_y[:, l].prod(axis=1) <= fan_y).all()
    assert not ((arrays.spatial_x > 1) & (arrays.spatial_y > 1)).any()
    assert arrays.keep[:, 0].all()
    # the scalar validator agrees on decoded mappings
    for index in range(0, n, 40):
        validate_mapping(layer, arch, decode(arrays, arch, index))


@pytest.mark.parametrize("layer_name,arch_name", [("resnet18_l1_3x3", "simple-16x16"),
                                                  ("resnet18_l1_3x3", "eyeriss-like-12x14")])
def test_sampler_covers_spatial_factors_and_bypass(reference_cases, layer_name, arch_name):
    layer, arch = _case(reference_cases, layer_name, arch_name)
    arrays = sample_mappings(layer, arch, 1000, np.random.default_rng(3))
    fanout_levels = [l for l in range(len(arch.levels)) if arch.fanout(l) != (1, 1)]
    assert fanout_levels  # both architectures have a PE array
    for l in range(len(arch.levels)):
        if l not in fanout_levels:
            assert (arrays.spatial_x[:, l] == 1).all() and (arrays.spatial_y[:, l] == 1).all()
    l = fanout_levels[0]
    used_x = arrays.spatial_x[:, l].prod(axis=1)
    used_y = arrays.spatial_y[:, l].prod(axis=1)
    assert (used_x > 1).mean() > 0.5 and (used_y > 1).mean() > 0.5
    assert ((used_x > 1) & (used_y > 1)).any()
    # several different dimensions are mapped spatially across the samples
    assert ((arrays.spatial_x[:, l] > 1) | (arrays.spatial_y[:, l] > 1)).any(axis=0).sum() >= 4
    # temporal factors appear at every level, and orders vary
    assert ((arrays.temporal > 1).any(axis=(0, 2))).all()
    assert len({arrays.order[i, 0].tobytes() for i in range(arrays.size)}) > 100
    # bypass: inner levels drop each tensor in some mappings and keep it in others
    inner = arrays.keep[:, 1:]
    assert (~inner).any(axis=0).all() and inner.any(axis=0).all()
    assert arrays.keep[:, 0].all()


def test_no_bypass_keeps_what_each_level_can_hold(reference_cases):
    layer, arch = _case(reference_cases, "resnet18_l1_3x3", "simple-16x16")
    arrays = sample_mappings(layer, arch, 300, np.random.default_rng(5), bypass=False)
    assert arrays.keep.all()  # every level of simple-16x16 keeps all tensors


def test_sampler_respects_level_keeps(reference_cases):
    layer, arch = _case(reference_cases, "resnet18_l1_3x3", "simple-16x16")
    middle = arch.levels[1]
    restricted = dataclasses.replace(arch, levels=(arch.levels[0],
                                                   dataclasses.replace(middle, keeps=frozenset({Tensor.I, Tensor.O})),
                                                   *arch.levels[2:]))
    expected = np.array([[t in lv.keeps for t in TENSORS] for lv in restricted.levels])
    assert not expected[1, Tensor.W]

    fixed = sample_mappings(layer, restricted, 300, np.random.default_rng(11), bypass=False)
    assert np.array_equal(fixed.keep, np.broadcast_to(expected, fixed.keep.shape))
    assert not mapping_violations(layer, restricted, fixed).any()

    free = sample_mappings(layer, restricted, 600, np.random.default_rng(11), bypass=True)
    assert not free.keep[:, 1, Tensor.W].any()
    assert free.keep[:, 0].all()
    for t in (Tensor.I, Tensor.O):  # the tensors the level may hold are still bypassed at random
        assert free.keep[:, 1, t].any() and not free.keep[:, 1, t].all()
    assert not mapping_violations(layer, restricted, free).any()
    for index in range(0, free.size, 60):
        validate_mapping(layer, restricted, decode(free, restricted, index))


def test_same_seed_same_arrays_different_seed_different(reference_cases):
    layer, arch = _case(reference_cases, "resnet18_l1_3x3", "eyeriss-like-12x14")
    a = sample_mappings(layer, arch, 200, np.random.default_rng(42))
    b = sample_mappings(layer, arch, 200, np.random.default_rng(42))
    c = sample_mappings(layer, arch, 200, np.random.default_rng(43))
    assert _same(a, b)
    assert not _same(a, c)
    for name in ("temporal", "order", "keep"):
        assert not np.array_equal(getattr(a, name), getattr(c, name)), name


def test_sizes_zero_and_one(reference_cases):
    layer, arch = _case(reference_cases, "small_c8k16p8r3", "simple-16x16")
    empty = sample_mappings(layer, arch, 0, np.random.default_rng(0))
    assert empty.size == 0 and empty.temporal.shape == (0, len(arch.levels), N_DIMS)
    one = sample_mappings(layer, arch, 1, np.random.default_rng(0))
    assert one.size == 1
    validate_mapping(layer, arch, decode(one, arch, 0))
    with pytest.raises(ValueError):
        sample_mappings(layer, arch, -1, np.random.default_rng(0))


def test_gives_up_with_a_clear_error_when_nothing_fits(reference_cases):
    layer, arch = _case(reference_cases, "small_c8k16p8r3", "simple-16x16")
    # an innermost level that keeps all three tensors needs at least 3 words
    tiny = dataclasses.replace(arch, levels=(*arch.levels[:-1], dataclasses.replace(arch.levels[-1], size_words=2)))
    with pytest.raises(SamplingError, match=r"found 0 of 10 legal mappings.*3 rounds"):
        sample_mappings(layer, tiny, 10, np.random.default_rng(0), bypass=False, max_rounds=3, max_batch=1000)


def test_unit_dimensions_stay_unit(reference_cases):
    layer, arch = _case(reference_cases, "resnet18_fc", "simple-16x16")
    arrays = sample_mappings(layer, arch, 200, np.random.default_rng(1))
    for d in DIMS:
        if layer.dims[d] == 1:
            assert (arrays.temporal[:, :, d] == 1).all() and (arrays.spatial[:, :, d] == 1).all()
