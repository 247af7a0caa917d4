"""The sumset multicast of a windowed input's MAC-level reads (search.mapper.window.sumset_multicast) against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import search.mapper.window as window_module
from formulation.axes import N_DIMS
from formulation.specs.types import Layer
from search.mapper.bounds import BoundModel
from tests.mapper_cases import brute_force, brute_force_size, keep_set_bounds_of_mappings, tiny_arch
from tests.test_mapper_bounds import check_partial_bounds_below_completions

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@st.composite
def wide_windowed_cases(draw, limit: int = 6000):
    """Windowed layers on meshes wide enough to spread both dimensions of a window axis."""
    layer = Layer("tiny", N=1, K=draw(st.sampled_from([1, 2])), C=1, P=draw(st.sampled_from([2, 3, 4])),
                  Q=draw(st.sampled_from([1, 2])), R=draw(st.sampled_from([2, 3])), S=draw(st.sampled_from([1, 2])),
                  Wstride=draw(st.sampled_from([1, 2])), Wdilation=draw(st.sampled_from([1, 2])))
    arch = tiny_arch(draw(st.sampled_from([2, 3])), draw(st.sampled_from([(4, 1), (6, 1), (2, 2), (3, 2)])),
                     glb_words=draw(st.sampled_from([16, 1024])), rf_words=draw(st.sampled_from([4, 64])))
    assume(brute_force_size(layer, arch, stop_above=limit) <= limit)
    return layer, arch


def test_sumset_multicast_is_below_the_least_of_the_two_and_exact_on_a_line():
    s1, s2 = np.array([1.0, 2.0, 4.0, 3.0]), np.array([5.0, 2.0, 3.0, 3.0])
    f = window_module.sumset_multicast(s1, s2)
    assert (f <= np.minimum(s1, s2)).all()
    # P 4 and R 3 side by side: 12 index pairs read 6 coordinates, 2 MACs per coordinate
    assert f[2] == pytest.approx(2.0)
    assert f[0] == pytest.approx(1.0)


@settings(max_examples=15, **SETTINGS)
@given(wide_windowed_cases())
def test_keep_set_bound_with_the_sumset_is_below_each_mappings_energy(case):
    energy, own = keep_set_bounds_of_mappings(*case, rows=300)
    # floating point: a tight keep-set bound can read one ulp above the model (824.4000000000001 against
    # 824.4 on P 4, R 2 over a 4x1 mesh), within the search's relative tolerance
    assert (own <= energy * (1 + 1e-12)).all()


@settings(max_examples=15, **SETTINGS)
@given(wide_windowed_cases(), st.data())
def test_partial_bound_with_the_sumset_is_below_every_completion(case, data):
    check_partial_bounds_below_completions(*case, data)


def test_the_sumset_raises_the_bound_of_a_depthwise_tiling(monkeypatch):
    """A depthwise layer with P 2 (of 4) and R 3 on one 6-wide axis, the inputs read by the MACs straight
    from the outer level: 6 index pairs read 4 coordinates, 8 reads for 12 MACs, more than the 6 inputs;
    the old ``min(S_P, S_R)`` credit (2 pairs per coordinate) gave 6. The bound rises and stays below
    every mapping of the tiling."""
    layer = Layer("dw", N=1, K=1, C=1, P=4, Q=1, R=3, S=1)
    arch = tiny_arch(2, (6, 1), glb_words=1024)
    energy, _, arrays = brute_force(layer, arch)
    spread = (arrays.spatial_x[:, 0, 3] == 2) & (arrays.spatial_x[:, 0, 5] == 3) & np.isfinite(energy)
    assert spread.any()
    i = int(np.flatnonzero(spread)[0])
    same = ((arrays.temporal == arrays.temporal[i]).all(axis=(1, 2))
            & (arrays.spatial_x == arrays.spatial_x[i]).all(axis=(1, 2))
            & (arrays.spatial_y == arrays.spatial_y[i]).all(axis=(1, 2)))
    rows = slice(i, i + 1)
    args = (arrays.temporal[rows], arrays.spatial_x[rows], arrays.spatial_y[rows], np.ones(N_DIMS, dtype=bool))
    tight = BoundModel(layer, arch).bounds(*args)
    monkeypatch.setattr(window_module, "sumset_multicast", lambda s1, s2: np.minimum(s1, s2))
    monkeypatch.setattr(window_module, "grid_multicast", lambda bm, s, t, pair, axis: np.minimum(
        *(np.cumprod(s[:, ::-1], axis=1)[:, ::-1][:, :, d] for d in pair)))
    loose = BoundModel(layer, arch).bounds(*args)
    assert tight.chain_cost[0, 1, 0, -1] > loose.chain_cost[0, 1, 0, -1]
    assert tight.energy_pJ[0] <= energy[same].min()


@pytest.mark.parametrize("stride", [1, 2])
def test_grid_multicast_counts_the_distinct_coordinates_of_a_spread_pair(stride):
    """P 4 and R 3 spread on one fanout (no temporal factor below it): ``stride * i + j`` takes 6
    distinct values for stride 1 and 9 for stride 2, so 12 MACs share a coordinate 2 or 4/3 times."""
    from search.mapper.bounds import BoundModel as BM
    layer = Layer("dw", N=1, K=1, C=1, P=4, Q=1, R=3, S=1, Wstride=stride)
    arch = tiny_arch(2, (12, 1), glb_words=1024)
    bm = BM(layer, arch)
    s = np.ones((1, 2, N_DIMS))
    s[0, 0, 3], s[0, 0, 5] = 4, 3
    t = np.ones((1, 2, N_DIMS))
    axis = bm.window_axes[0]
    share = window_module.grid_multicast(bm, s, t, [3, 5], axis)
    assert share[0, 0] == pytest.approx(12 / (6 if stride == 1 else 9))
    assert share[0, 1] == pytest.approx(1.0)
