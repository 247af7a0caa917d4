"""The innermost-loop (joint) energy bound of search.mapper.bounds against brute force."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import search.mapper.bounds as bounds_module
import search.mapper.pair_terms as pair_terms_module
from formulation.axes import N_DIMS
from formulation.goals import Objective
from formulation.specs.types import Layer
from search.mapper.bounds import BoundModel, objective_of
from search.mapper.leaves import chain_matrix, keep_set_energy
from tests.mapper_cases import (brute_force, brute_force_size, check_search_finds_brute_force_optimum,
                                keep_set_bounds_of_mappings, tiny_arch)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def partial_tilings(layer, arch, data):
    """Every mapping of a tiny case by brute force (energy, cycles, which are legal) and their
    tilings with a drawn set of dimensions left free (factors 1): the partial tilings each mapping
    completes; last, the complete mappings."""
    energy, cycles, arrays = brute_force(layer, arch)
    ok = np.isfinite(energy)
    assume(ok.any())
    assigned = np.array(data.draw(st.lists(st.booleans(), min_size=N_DIMS, max_size=N_DIMS)))
    t, sx, sy = arrays.temporal.copy(), arrays.spatial_x.copy(), arrays.spatial_y.copy()
    t[:, :, ~assigned], sx[:, :, ~assigned], sy[:, :, ~assigned] = 1, 1, 1
    return energy, cycles, ok, assigned, (t, sx, sy), arrays


@st.composite
def windowed_cases(draw, limit: int = 4000):
    """Tiny layers with sliding windows, strides and dilation on 2- and 3-level architectures."""
    layer = Layer("tiny", N=draw(st.sampled_from([1, 2])), K=draw(st.sampled_from([1, 2, 4])),
                  C=draw(st.sampled_from([1, 2, 3])), P=draw(st.sampled_from([2, 3, 4])),
                  Q=draw(st.sampled_from([1, 2])), R=draw(st.sampled_from([2, 3])),
                  S=draw(st.sampled_from([1, 2])), Wstride=draw(st.sampled_from([1, 2])),
                  Hstride=draw(st.sampled_from([1, 2])), Wdilation=draw(st.sampled_from([1, 2])),
                  Hdilation=draw(st.sampled_from([1, 2])))
    arch = tiny_arch(draw(st.sampled_from([2, 3])), draw(st.sampled_from([(2, 1), (1, 2), (2, 2)])),
                     glb_words=draw(st.sampled_from([16, 64, 1024])), rf_words=draw(st.sampled_from([4, 8, 64])))
    assume(brute_force_size(layer, arch, stop_above=limit) <= limit)
    return layer, arch


def _without_forcing(layer, arch, t, sx, sy, assigned) -> np.ndarray:
    """The energy bound without the innermost-loop rule (no level enumerated)."""
    levels = bounds_module.MAX_FORCED_LEVELS
    try:
        bounds_module.MAX_FORCED_LEVELS = 0
        return BoundModel(layer, arch).bounds(t, sx, sy, assigned).energy_pJ
    finally:
        bounds_module.MAX_FORCED_LEVELS = levels


def check_partial_bounds_below_completions(layer, arch, data) -> None:
    """The bounds of random partial tilings (:func:`partial_tilings`) are at most the energy, cycles and
    energy x cycles of every legal completion."""
    energy, cycles, ok, assigned, (t, sx, sy), _ = partial_tilings(layer, arch, data)
    b = BoundModel(layer, arch).bounds(t[ok], sx[ok], sy[ok], assigned)
    assert (b.energy_pJ <= energy[ok]).all()
    assert (b.cycles <= cycles[ok]).all()
    assert (b.edp_pJ_cycles <= (energy * cycles)[ok] * (1 + 1e-12)).all()

@settings(max_examples=15, **SETTINGS)
@given(windowed_cases(), st.data())
def test_innermost_loop_bound_is_below_every_completion_and_above_the_old_bound(case, data):
    layer, arch = case
    energy, cycles, ok, assigned, (t, sx, sy), _ = partial_tilings(layer, arch, data)
    joint = BoundModel(layer, arch).bounds(t, sx, sy, assigned).energy_pJ
    old = _without_forcing(layer, arch, t, sx, sy, assigned)
    assert (joint[ok] <= energy[ok]).all()
    assert (joint >= old).all()


def test_innermost_loop_bound_tightens_a_conv_tiling():
    """A 3x3 convolution whose loops all sit at the outer level: the old bound lets every tensor
    dodge its refetch at once; the joint bound makes at least one pay it, still below the truth."""
    layer = Layer("conv", N=1, C=4, K=4, P=4, Q=1, R=3, S=1)
    arch = tiny_arch(3, (1, 1), glb_words=1024, rf_words=64)
    energy, _, arrays = brute_force(layer, arch)
    rows = np.flatnonzero(np.isfinite(energy) & (arrays.temporal[:, 0].prod(axis=1) == np.prod(layer.dims)))
    rows_ = rows[:50]
    assert len(rows_)
    t, sx, sy = (a[rows_] for a in (arrays.temporal, arrays.spatial_x, arrays.spatial_y))
    full = np.ones(N_DIMS, dtype=bool)
    joint = BoundModel(layer, arch).bounds(t, sx, sy, full).energy_pJ
    old = _without_forcing(layer, arch, t, sx, sy, full)
    assert (joint <= energy[rows_]).all()
    assert (joint > old * 1.01).any()


@settings(max_examples=8, **SETTINGS)
@given(windowed_cases(limit=3000), st.sampled_from([Objective.ENERGY, Objective.EDP]))
def test_search_with_the_joint_bound_finds_the_brute_force_optimum(case, objective):
    check_search_finds_brute_force_optimum(*case, objective)


@settings(max_examples=12, **SETTINGS)
@given(windowed_cases())
def test_keep_set_energy_is_below_each_mappings_energy(case):
    """The per-keep-set bound of complete tilings, raised by the innermost-loop rule, stays below the
    exact energy of every mapping with that tiling and keep set (to rounding: where the bound is tight,
    e.g. a dilated 1-D window on three levels, it sums the same terms in another order and may come
    out one ulp above)."""
    energy, own = keep_set_bounds_of_mappings(*case, rows=200)
    assert (own <= energy * (1 + 1e-12)).all()


@st.composite
def split_cases(draw, limit: int = 4000):
    """Tiny layers (with and without windows) on meshes wide enough for the fanout to be shared."""
    layer = Layer("tiny", N=draw(st.sampled_from([1, 2])), K=draw(st.sampled_from([1, 2, 4])),
                  C=draw(st.sampled_from([1, 2, 4])), P=draw(st.sampled_from([1, 2, 3, 4])),
                  Q=draw(st.sampled_from([1, 2])), R=draw(st.sampled_from([1, 2, 3])),
                  S=draw(st.sampled_from([1, 2])), Wstride=draw(st.sampled_from([1, 2])))
    arch = tiny_arch(draw(st.sampled_from([2, 3])), draw(st.sampled_from([(2, 2), (4, 1), (4, 2), (2, 4)])),
                     glb_words=draw(st.sampled_from([16, 64, 1024])), rf_words=draw(st.sampled_from([4, 8, 64])),
                     glb_bw=draw(st.sampled_from([None, 2.0])))
    assume(brute_force_size(layer, arch, stop_above=limit) <= limit)
    return layer, arch


def _without_splits(layer, arch, t, sx, sy, assigned):
    """The bound with each tensor given the whole fanout left (no split)."""
    try:
        bounds_module.JOINT_SPLITS = False
        return BoundModel(layer, arch).bounds(t, sx, sy, assigned)
    finally:
        bounds_module.JOINT_SPLITS = True


@settings(max_examples=25, **SETTINGS)
@given(split_cases(), st.data())
def test_split_bound_is_below_every_completion_and_above_the_unsplit_bound(case, data):
    """Energy, cycles and EDP (energy x cycles under one split, not min energy x min cycles) of
    every mapping completing a partial tiling stay above the joint bound over the splits."""
    layer, arch = case
    energy, cycles, ok, assigned, (t, sx, sy), _ = partial_tilings(layer, arch, data)
    joint = BoundModel(layer, arch).bounds(t, sx, sy, assigned)
    plain = _without_splits(layer, arch, t, sx, sy, assigned)
    clock = arch.clock_GHz
    edp = objective_of(Objective.EDP, energy, cycles, clock)
    assert (joint.energy_pJ[ok] <= energy[ok]).all()
    assert (joint.cycles[ok] <= cycles[ok]).all()
    assert (joint.value(Objective.EDP, clock)[ok] <= edp[ok]).all()
    assert (joint.energy_pJ >= plain.energy_pJ).all() and (joint.cycles >= plain.cycles).all()
    assert (joint.value(Objective.EDP, clock) >= plain.value(Objective.EDP, clock)).all()


def test_split_bound_shares_the_fanout():
    """At the root of a 1x1 layer on a 2x2 mesh the unsplit bound lets Weights (over P), Inputs
    (over K) and Outputs (over C) each use all four PEs at once; the split bound cannot, and stays
    below the brute-force optimum of every objective."""
    layer = Layer("pw", N=1, K=4, C=4, P=4, Q=1, R=1, S=1)
    arch = tiny_arch(3, (2, 2), glb_words=1024, rf_words=64)
    energy, cycles, _ = brute_force(layer, arch)
    ok = np.isfinite(energy)
    one = np.ones((1, arch_levels := len(arch.levels), N_DIMS), dtype=np.int64)
    none = np.zeros(N_DIMS, dtype=bool)
    joint = BoundModel(layer, arch).bounds(one, one, one, none)
    plain = _without_splits(layer, arch, one, one, one, none)
    assert arch_levels == 3
    for objective in (Objective.ENERGY, Objective.EDP):
        best = objective_of(objective, energy[ok], cycles[ok], arch.clock_GHz).min()
        assert plain.value(objective, arch.clock_GHz)[0] <= joint.value(objective, arch.clock_GHz)[0] <= best
    assert joint.energy_pJ[0] > plain.energy_pJ[0] * 1.01
    assert joint.value(Objective.EDP, arch.clock_GHz)[0] > plain.value(Objective.EDP, arch.clock_GHz)[0] * 1.01


def _switched(layer, arch, t, sx, sy, assigned, **flags):
    """The bound with module flags of search.mapper.bounds and search.mapper.pair_terms set (restored
    afterwards)."""
    home = {k: next(m for m in (bounds_module, pair_terms_module) if hasattr(m, k)) for k in flags}
    old = {k: getattr(home[k], k) for k in flags}
    try:
        for k, v in flags.items():
            setattr(home[k], k, v)
        return BoundModel(layer, arch).bounds(t, sx, sy, assigned)
    finally:
        for k, v in old.items():
            setattr(home[k], k, v)


@settings(max_examples=20, **SETTINGS)
@given(split_cases(), st.data())
def test_compulsory_traffic_alone_is_below_every_completion(case, data):
    """The compulsory-traffic rule on its own (no splits, no forced sets) never exceeds a
    completion's energy or EDP, and never lowers the bound."""
    layer, arch = case
    energy, cycles, ok, assigned, (t, sx, sy), _ = partial_tilings(layer, arch, data)
    alone = _switched(layer, arch, t, sx, sy, assigned, JOINT_SPLITS=False, MAX_FORCED_LEVELS=0)
    off = _switched(layer, arch, t, sx, sy, assigned, JOINT_SPLITS=False, MAX_FORCED_LEVELS=0,
                    COMPULSORY_TRAFFIC=False)
    clock = arch.clock_GHz
    assert (alone.energy_pJ[ok] <= energy[ok]).all()
    assert (alone.value(Objective.EDP, clock)[ok] <= objective_of(Objective.EDP, energy, cycles, clock)[ok]).all()
    assert (alone.energy_pJ >= off.energy_pJ).all()


def test_compulsory_traffic_bounds_the_inputs_of_a_free_window():
    """With nothing assigned, the inputs of a 3x3 convolution still leave DRAM once each."""
    layer = Layer("conv", N=1, K=2, C=2, P=4, Q=1, R=3, S=1)
    arch = tiny_arch(3, (2, 2), glb_words=1024, rf_words=64)
    energy, _, _ = brute_force(layer, arch)
    one = np.ones((1, 3, N_DIMS), dtype=np.int64)
    none = np.zeros(N_DIMS, dtype=bool)
    on = _switched(layer, arch, one, one, one, none, JOINT_SPLITS=False, MAX_FORCED_LEVELS=0)
    off = _switched(layer, arch, one, one, one, none, JOINT_SPLITS=False, MAX_FORCED_LEVELS=0,
                    COMPULSORY_TRAFFIC=False)
    assert off.min_chain[0, 1] < on.min_chain[0, 1]            # Inputs: 2 x 6 words from DRAM at least
    assert on.min_chain[0, 1] >= 2 * 6 * 200.0 / 8 * (1 - 1e-9)
    assert on.energy_pJ[0] <= energy[np.isfinite(energy)].min()


def test_compulsory_traffic_counts_the_refetch_of_an_outer_irrelevant_loop():
    """A windowed input under a K loop at DRAM that encloses a C loop streams once per K iteration:
    the rule charges ``K_outer |I|``, more than the window-free count, never more than the truth."""
    layer = Layer("conv", N=1, K=4, C=2, P=4, Q=1, R=3, S=1)
    arch = tiny_arch(3, (2, 1), glb_words=1024, rf_words=64)
    energy, _, arrays = brute_force(layer, arch)
    t = arrays.temporal
    rows = np.flatnonzero(np.isfinite(energy) & (t[:, 0, 1] == 4) & (t[:, 1, 2] == 2))  # K=4 at DRAM, C=2 at GB
    assert len(rows)
    full = np.ones(N_DIMS, dtype=bool)
    args = (arrays.temporal[rows], arrays.spatial_x[rows], arrays.spatial_y[rows], full)
    on = _switched(layer, arch, *args, JOINT_SPLITS=False, MAX_FORCED_LEVELS=0)
    off = _switched(layer, arch, *args, JOINT_SPLITS=False, MAX_FORCED_LEVELS=0, COMPULSORY_TRAFFIC=False)
    assert (on.energy_pJ <= energy[rows]).all()
    # Inputs read from DRAM into the register files (the GlobalBuffer bypassed): at least 4 x (2 x 6)
    # words, 25 pJ each; kept in the GlobalBuffer they need not stream again (no C loop above it)
    assert (on.chain_cost[:, 1, 0, 2] >= 4 * 12 * 200.0 / 8 * (1 - 1e-9)).all()
    assert (on.chain_cost[:, 1, 0, 2] > off.chain_cost[:, 1, 0, 2]).any()


@settings(max_examples=12, **SETTINGS)
@given(split_cases())
def test_fitting_keep_energy_is_below_each_legal_mapping_of_the_tiling(case):
    """The bound of a complete tiling, least over the keep sets whose tiles fit together, stays
    below every legal mapping of that tiling and above the tiling's keep-free bound."""
    from search.mapper.leaves import LeafExpander, Rules
    from search.mapper.space import Space
    layer, arch = case
    energy, _, arrays = brute_force(layer, arch)
    rows = np.flatnonzero(np.isfinite(energy))
    assume(len(rows))
    rows = np.random.default_rng(1).permutation(rows)[:300]
    t, sx, sy = arrays.temporal[rows], arrays.spatial_x[rows], arrays.spatial_y[rows]
    b = BoundModel(layer, arch).bounds(t, sx, sy, np.ones(N_DIMS, dtype=bool))
    fit = LeafExpander(Space(layer, arch), Rules()).fitting_keep_energy(t, sx, sy, b)
    assert (fit <= energy[rows]).all()
    assert (fit >= b.energy_pJ * (1 - 1e-9)).all()


@st.composite
def sweep_cases(draw, limit: int = 16000):
    """Windowed layers on three levels, so that a parent can feed a keeper two levels down."""
    layer = Layer("tiny", N=1, K=draw(st.sampled_from([2, 4])), C=1, P=draw(st.sampled_from([2, 3, 4])), Q=1,
                  R=draw(st.sampled_from([2, 3])), S=1, Wstride=draw(st.sampled_from([1, 2])),
                  Wdilation=draw(st.sampled_from([1, 2])))
    arch = tiny_arch(3, draw(st.sampled_from([(2, 1), (1, 2), (2, 2)])), glb_words=1024,
                     rf_words=draw(st.sampled_from([8, 64])))
    assume(brute_force_size(layer, arch, stop_above=limit) <= limit)
    return layer, arch


@settings(max_examples=15, **SETTINGS)
@given(sweep_cases())
def test_sweep_reads_never_exceed_the_models_reads(case):
    """The sweep bound (search.mapper.sweep) on its own: for every mapping whose inputs are kept at
    ``p`` and next at ``c``, the exact model reads at least that many input words at ``p``."""
    from formulation.axes import Tensor
    from formulation.model.exact import evaluate_batch
    from search.mapper.sweep import sweep_reads
    layer, arch = case
    energy, _, arrays = brute_force(layer, arch)
    skip_glb = arrays.keep[:, 0, Tensor.I] & ~arrays.keep[:, 1, Tensor.I] & arrays.keep[:, 2, Tensor.I]
    rows = np.flatnonzero(np.isfinite(energy) & skip_glb & (arrays.temporal[:, 0].prod(axis=1) > 1))
    assume(len(rows))
    rows = np.random.default_rng(2).permutation(rows)[:600]
    arr = arrays.take(rows)
    ev = evaluate_batch(layer, arch, arr)
    bm = BoundModel(layer, arch)
    t, s = arr.temporal.astype(float), (arr.spatial_x * arr.spatial_y).astype(float)
    L = t.shape[1]
    ext = np.ones((len(rows), L + 1, N_DIMS))
    for l in range(L - 1, -1, -1):
        ext[:, l] = ext[:, l + 1] * t[:, l] * s[:, l]
    cap = ((bm.fan_x[None] // arr.spatial_x.prod(axis=2)) * (bm.fan_y[None] // arr.spatial_y.prod(axis=2))).astype(float)
    bound = sweep_reads(layer, bm.proj, t, s, ext, cap, np.zeros(N_DIMS, dtype=bool), bm.dims)
    keep = arr.keep[:, :, Tensor.I]
    checked = 0
    for i in range(len(rows)):
        keepers = [l for l in range(L) if keep[i, l]]
        for p, c in zip(keepers, keepers[1:]):
            assert bound[i, p, c] <= ev.reads[i, p, Tensor.I] / layer.G + 1e-6
            checked += bound[i, p, c] > 0
    assume(checked)


@settings(max_examples=15, **SETTINGS)
@given(windowed_cases(), st.data())
def test_per_row_forced_sets_alone_are_below_every_completion_and_above_the_minimal_sets(case, data):
    """The innermost loop's sets restricted per row to the dimensions that can be that loop (no
    splits, no compulsory traffic): never above a completion, never below the minimal sets."""
    layer, arch = case
    energy, _, ok, assigned, (t, sx, sy), arrays = partial_tilings(layer, arch, data)
    flags = dict(JOINT_SPLITS=False, COMPULSORY_TRAFFIC=False, SWEEP_REFETCH=False)
    per_row = _switched(layer, arch, t, sx, sy, assigned, **flags)
    minimal = _switched(layer, arch, t, sx, sy, assigned, FORCED_PER_ROW=False, **flags)
    assert (per_row.energy_pJ[ok] <= energy[ok]).all()
    assert (per_row.energy_pJ >= minimal.energy_pJ * (1 - 1e-12)).all()
    full = np.ones(N_DIMS, dtype=bool)
    rows = np.flatnonzero(ok)[:200]
    b = _switched(layer, arch, arrays.temporal[rows], arrays.spatial_x[rows], arrays.spatial_y[rows], full, **flags)
    per_keep = keep_set_energy(b, chain_matrix(arrays.keep[rows]))
    assert (np.diagonal(per_keep) <= energy[rows]).all()


def test_too_many_splits_fall_back_to_the_unsplit_bound(monkeypatch):
    """Past MAX_SPLIT_ROWS the split is skipped: the bound is then exactly the unsplit one."""
    import search.mapper.splits as splits_module
    layer = Layer("pw", N=1, K=4, C=4, P=4, Q=1, R=1, S=1)
    arch = tiny_arch(3, (2, 2), glb_words=1024, rf_words=64)
    one = np.ones((1, 3, N_DIMS), dtype=np.int64)
    none = np.zeros(N_DIMS, dtype=bool)
    monkeypatch.setattr(splits_module, "MAX_SPLIT_ROWS", 1)
    capped = BoundModel(layer, arch).bounds(one, one, one, none)
    plain = _without_splits(layer, arch, one, one, one, none)
    assert capped.energy_pJ[0] == plain.energy_pJ[0]
    assert capped.value(Objective.EDP, arch.clock_GHz)[0] == plain.value(Objective.EDP, arch.clock_GHz)[0]
