"""The per-instance floors of a windowed input (search.mapper.instance_union) against brute force."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import search.mapper.instance_union as instance_module
from formulation.axes import DIMS, Dim, Tensor
from formulation.goals import Objective
from formulation.model.exact import access_counts
from formulation.specs.types import Architecture, Layer, Mac, StorageLevel, Technology
from search.mapper.bounds import BoundModel
from search.mapper.instance_union import instance_floors
from search.mapper.splits import TensorKeys
from tests.mapper_cases import (brute_force, brute_force_size, check_search_finds_brute_force_optimum,
                                keep_set_bounds_of_mappings, tiny_eyeriss)
from tests.test_mapper_bounds import check_partial_bounds_below_completions, partial_tilings

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def spread_arch(mesh: tuple[int, int], glb_words: int = 16, ifmap_words: int = 4) -> Architecture:
    """DRAM -> GlobalBuffer (Inputs, Outputs; one instance, the fanout) -> per-PE buffer (Outputs,
    Weights) -> per-PE ifmap scratchpad (Inputs) -> MACs: ``eyeriss-like`` in four levels, the ifmap
    scratchpad one level below the fanout (no links onto it)."""
    mx, my = mesh
    pe = mx * my
    lv = (StorageLevel("DRAM", Technology.DRAM, None, 8, 4, 1, 1, 200.0, 200.0, 200.0, 200.0, 2.0, 2.0),
          StorageLevel("GlobalBuffer", Technology.SRAM, glb_words, 8, 2, 1, 1, 6.0, 7.0, 7.0, 7.5, 1.0, 1.0,
                       keeps=frozenset({Tensor.I, Tensor.O})),
          StorageLevel("pe", Technology.SRAM, 8, 8, 1, pe, mx, 0.9, 1.0, 1.0, 1.1,
                       keeps=frozenset({Tensor.O, Tensor.W})),
          StorageLevel("ifmap", Technology.SRAM, ifmap_words, 8, 1, pe, mx, 0.5, 0.55, 0.55, 0.55,
                       keeps=frozenset({Tensor.I})))
    return Architecture("tiny-spread", lv, Mac(pe, mx, 1.0))


@st.composite
def spread_window_cases(draw, limit: int = 4000):
    """Windowed (often depthwise) layers on :func:`spread_arch` meshes wide enough to spread both
    dimensions of a window axis."""
    layer = Layer("tiny", N=1, K=draw(st.sampled_from([1, 1, 2])), C=draw(st.sampled_from([1, 1, 2])),
                  P=draw(st.sampled_from([2, 3, 4])), Q=draw(st.sampled_from([1, 1, 2])),
                  R=draw(st.sampled_from([2, 3])), S=1, Wstride=draw(st.sampled_from([1, 2])), Wdilation=draw(st.sampled_from([1, 2])))
    arch = spread_arch(draw(st.sampled_from([(3, 1), (2, 2), (4, 1), (6, 1)])),
                       glb_words=draw(st.sampled_from([4, 64])), ifmap_words=draw(st.sampled_from([2, 4])))
    assume(brute_force_size(layer, arch, stop_above=limit) <= limit)
    return layer, arch


def _own_keys(bm: BoundModel, arrays, rows: np.ndarray, free: np.ndarray) -> TensorKeys:
    """Each mapping's own split key for the Inputs (one key per row): its free dimensions' total
    spatial products, ``win`` = ``win_lo`` the least over each window pair's free dimensions."""
    z = (arrays.spatial_x[rows] * arrays.spatial_y[rows]).prod(axis=1).astype(float)        # [r, 7]
    win = np.stack([np.where(free[pair], z[:, pair], np.inf).min(axis=1) for pair in bm.window_pairs], axis=1)
    zk = z[:, Dim.K] if free[Dim.K] else np.ones(len(rows))
    return TensorKeys(np.ones(len(rows)), np.ones(len(rows)), zk, win, win)


@settings(max_examples=20, **SETTINGS)
@given(spread_window_cases(), st.data())
def test_instance_floors_are_below_the_models_counts(case, data):
    """For every legal mapping and a drawn set of free dimensions (their factors at 1 in the partial
    tiling), the floors with the mapping's own split key (and with no split) are at most the
    exact model's fills of each input keeper ``c`` and reads of its parent ``p``."""
    layer, arch = case
    energy, _, ok, assigned, (t, sx, sy), arrays = partial_tilings(layer, arch, data)
    bm = BoundModel(layer, arch)
    assume(bm.window_axes)
    rows = np.flatnonzero(ok)
    free = ~assigned
    batch = bm.batch(t[rows], sx[rows], sy[rows])
    counts = access_counts(layer, arch, arrays.take(rows))
    keep = arrays.keep[rows][:, :, Tensor.I]                                                  # [r, L]
    own = _own_keys(bm, arrays, rows, free)
    ident = np.concatenate([own.zk[:, None], own.win], axis=1)
    uniq, which = np.unique(ident, axis=0, return_inverse=True)
    which = which.ravel()
    keys = TensorKeys(np.ones(len(uniq)), np.ones(len(uniq)), uniq[:, 0], uniq[:, 1:], uniq[:, 1:])
    fl_own, rd_own = instance_floors(bm, batch.s, free, batch.cap_below, keys)          # [r, key, ...]
    relaxed = instance_floors(bm, batch.s, free, batch.cap_below,
                              TensorKeys(np.ones(1), np.ones(1), np.ones(1),
                                         np.array([[np.where(free[p], bm.dims[p], np.inf).min()
                                                    for p in bm.window_pairs]])))
    assert fl_own is not None and set(fl_own) == {3}   # the ifmap scratchpad only: a fanout above, none at 2
    r = np.arange(len(rows))
    for (p, c), rd_c in rd_own.items():
        pair = keep[:, p] & keep[:, c] & ~keep[:, p + 1:c].any(axis=1)       # consecutive keepers p, c
        fills, reads = counts["fills"][pair, c, Tensor.I], counts["reads"][pair, p, Tensor.I]
        for f, rd in ((fl_own[c][r, which][pair], rd_c[r, which][pair]),
                      (relaxed[0][c][pair, 0], relaxed[1][(p, c)][pair, 0])):
            assert (f <= fills * (1 + 1e-12)).all()
            assert (rd <= reads * (1 + 1e-12)).all()


@settings(max_examples=10, **SETTINGS)
@given(spread_window_cases(), st.data())
def test_partial_bound_with_instance_floors_is_below_every_completion(case, data):
    check_partial_bounds_below_completions(*case, data)


@settings(max_examples=10, **SETTINGS)
@given(spread_window_cases())
def test_keep_set_bound_with_instance_floors_is_below_each_mappings_energy(case):
    energy, own = keep_set_bounds_of_mappings(*case, rows=300)
    assert (own <= energy * (1 + 1e-12)).all()


def test_the_floor_raises_the_bound_of_a_depthwise_tiling_with_the_window_spread(monkeypatch):
    """A depthwise layer (P 4, R 3) on a 6x1 shrunk eyeriss: with P 2 and R 3 spread over the PEs
    and the inputs kept in the per-PE ifmap scratchpad straight below DRAM, every PE needs its own
    2 input columns (the 6 columns are the sumset of P's 4 and R's 3 values; a PE has 2 P values and
    one R value): 12 fills, not the 6 compulsory words. The floor is exactly that, raises that keep
    set's bound, and stays below every mapping of the tiling with that keep set."""
    layer = Layer("dw", N=1, K=1, C=1, P=4, Q=1, R=3, S=1)
    arch = tiny_eyeriss(mesh=(6, 1), glb_words=64, ifmap_words=4, psum_words=4)
    energy, _, arrays = brute_force(layer, arch)
    ifmap = 4
    keep = arrays.keep
    direct = keep[:, ifmap, Tensor.I] & ~keep[:, 1, Tensor.I]
    spread = ((arrays.spatial_x[:, 1, Dim.P] == 2) & (arrays.spatial_x[:, 1, Dim.R] == 3) & direct
              & np.isfinite(energy))
    assert spread.any()
    i = int(np.flatnonzero(spread)[0])
    same = (spread & (arrays.temporal == arrays.temporal[i]).all(axis=(1, 2))
            & (keep == keep[i]).all(axis=(1, 2)))
    counts = access_counts(layer, arch, arrays.take(np.array([i])))
    rows = slice(i, i + 1)
    bm = BoundModel(layer, arch)
    batch = bm.batch(arrays.temporal[rows], arrays.spatial_x[rows], arrays.spatial_y[rows])
    no_free = np.zeros(len(DIMS), dtype=bool)
    keys = TensorKeys(np.ones(1), np.ones(1), np.ones(1), np.full((1, len(bm.window_pairs)), np.inf))
    fills, reads = instance_floors(bm, batch.s, no_free, batch.cap_below, keys)
    assert fills[ifmap][0, 0] == 12 <= counts["fills"][0, ifmap, Tensor.I]
    assert reads[(0, ifmap)][0, 0] <= counts["reads"][0, 0, Tensor.I]
    args = (arrays.temporal[rows], arrays.spatial_x[rows], arrays.spatial_y[rows], np.ones(len(DIMS), dtype=bool))
    on = BoundModel(layer, arch).bounds(*args).chain_cost[0, Tensor.I, 0, ifmap]
    monkeypatch.setattr(instance_module, "INSTANCE_UNION", False)
    off = BoundModel(layer, arch).bounds(*args).chain_cost[0, Tensor.I, 0, ifmap]
    assert on > off
    from search.mapper.leaves import chain_matrix, keep_set_energy
    monkeypatch.setattr(instance_module, "INSTANCE_UNION", True)
    b = BoundModel(layer, arch).bounds(arrays.temporal[same], arrays.spatial_x[same], arrays.spatial_y[same],
                                       np.ones(len(DIMS), dtype=bool))
    per_keep = np.diagonal(keep_set_energy(b, chain_matrix(keep[same])))
    assert (per_keep <= energy[same] * (1 + 1e-12)).all()


@settings(max_examples=6, **SETTINGS)
@given(spread_window_cases(limit=2500), st.sampled_from([Objective.EDP, Objective.ENERGY]))
def test_search_with_instance_floors_proves_the_brute_force_optimum(case, objective):
    check_search_finds_brute_force_optimum(*case, objective)


def _least_sumsets(d1: int, d2: int, c1: int, c2: int) -> dict:
    """``{(n1, n2): least |c1 A + c2 B|}`` over every set ``A`` of ``n1`` integers in ``[0, d1)`` and ``B`` of
    ``n2`` in ``[0, d2)`` (brute force)."""
    from itertools import combinations
    least = {}
    for n1 in range(1, d1 + 1):
        for a in combinations(range(d1), n1):
            for n2 in range(1, d2 + 1):
                for b in combinations(range(d2), n2):
                    size = len({c1 * x + c2 * y for x in a for y in b})
                    least[(n1, n2)] = min(least.get((n1, n2), size), size)
    return least


@settings(max_examples=30, **SETTINGS)
@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3))
def test_sumset_size_is_below_every_pair_of_sets(d1, d2, c1, c2):
    """The strided sumset bound never exceeds the least sumset of any two sets of those sizes."""
    from search.mapper.instance_union import sumset_size
    for (n1, n2), size in _least_sumsets(d1, d2, c1, c2).items():
        assert n1 + n2 - 1 <= sumset_size(n1, n2, c1, c2, d1, d2) <= size


def test_sumset_size_sees_the_stride():
    """Stride 2, dilation 1, R = 3: ``n`` P values with every R value cover ``2 n + 1`` columns (the plain
    bound says ``n + 2``); one R value, ``n``; stride 1 falls back to ``n + 2``. Each is the least."""
    from search.mapper.instance_union import sumset_size
    least = _least_sumsets(5, 3, 2, 1)
    for n in range(1, 6):
        assert sumset_size(n, 3, 2, 1, 5, 3) == 2 * n + 1 == least[(n, 3)]
        assert sumset_size(n, 1, 2, 1, 5, 3) == n == least[(n, 1)]
        assert sumset_size(n, 3, 1, 1, 5, 3) == n + 2 == _least_sumsets(5, 3, 1, 1)[(n, 3)]


@st.composite
def strided_depthwise_cases(draw, limit: int = 4000):
    """Stride-2 depthwise layers (K = C = 1) with a 3-wide window on :func:`spread_arch` meshes."""
    layer = Layer("dw_s2", N=1, K=1, C=1, P=draw(st.sampled_from([2, 3, 4])), Q=draw(st.sampled_from([1, 2])),
                  R=3, S=1, Wstride=2, Wdilation=draw(st.sampled_from([1, 1, 2])))
    arch = spread_arch(draw(st.sampled_from([(3, 1), (2, 2), (4, 1), (6, 1)])),
                       glb_words=draw(st.sampled_from([4, 64])), ifmap_words=draw(st.sampled_from([2, 4])))
    assume(brute_force_size(layer, arch, stop_above=limit) <= limit)
    return layer, arch


@settings(max_examples=15, **SETTINGS)
@given(strided_depthwise_cases(), st.data())
def test_strided_instance_floors_are_below_the_models_counts(case, data):
    test_instance_floors_are_below_the_models_counts.hypothesis.inner_test(case, data)


@settings(max_examples=8, **SETTINGS)
@given(strided_depthwise_cases(), st.data())
def test_partial_bound_of_strided_depthwise_layers_is_below_every_completion(case, data):
    check_partial_bounds_below_completions(*case, data)


def test_the_strided_floor_is_the_models_fills_of_a_stride_2_tiling():
    """Stride 2, P 4, R 3 on a 2x1 mesh with P 2 spread and every R value in each PE, the inputs kept
    straight below DRAM in the ifmap scratchpad: each PE reads the 5 columns ``{0, 2} + {0, 1, 2}``
    (the plain sumset bound says 4), 10 fills in all. The floor is 10, at most every such mapping's
    fills, and equal to the least of them."""
    layer = Layer("dw_s2", N=1, K=1, C=1, P=4, Q=1, R=3, S=1, Wstride=2)
    arch = spread_arch((2, 1), glb_words=64, ifmap_words=4)
    energy, _, arrays = brute_force(layer, arch)
    ifmap = 3
    keep = arrays.keep
    sel = (keep[:, ifmap, Tensor.I] & ~keep[:, 1, Tensor.I] & (arrays.spatial_x[:, 1, Dim.P] == 2)
           & (arrays.spatial_x[:, 1, Dim.R] == 1) & np.isfinite(energy))
    assert sel.any()
    rows = np.flatnonzero(sel)
    counts = access_counts(layer, arch, arrays.take(rows))
    bm = BoundModel(layer, arch)
    batch = bm.batch(arrays.temporal[rows], arrays.spatial_x[rows], arrays.spatial_y[rows])
    keys = TensorKeys(np.ones(1), np.ones(1), np.ones(1), np.full((1, len(bm.window_pairs)), np.inf))
    fills, reads = instance_floors(bm, batch.s, np.zeros(len(DIMS), dtype=bool), batch.cap_below, keys)
    assert (fills[ifmap][:, 0] == 10).all()
    assert (fills[ifmap][:, 0] <= counts["fills"][:, ifmap, Tensor.I]).all()
    assert counts["fills"][:, ifmap, Tensor.I].min() == 10
    assert (reads[(0, ifmap)][:, 0] <= counts["reads"][:, 0, Tensor.I]).all()
