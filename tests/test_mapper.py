"""The exact mapper against brute force on tiny layers and architectures (tests/mapper_cases.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from formulation.axes import N_DIMS
from formulation.goals import Objective
from formulation.model.encoding import MappingArrays, encode
from formulation.model.exact import evaluate_batch
from formulation.specs.types import Layer
from search.mapper import Rules, map_layer
from search.mapper.bounds import BoundModel, objective_of
from search.mapper.orders import level_orders, order_key
from search.mapper.space import Space, ordered_factorization_count, ordered_factorizations, space_for, windowed_axes
from search.sampling import sample_mappings
from tests.mapper_cases import brute_force, brute_force_size, tiny_arch

OBJECTIVES = (Objective.ENERGY, Objective.LATENCY, Objective.EDP)
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@st.composite
def cases(draw, limit: int = 6000):
    g = draw(st.sampled_from([1, 1, 2]))  # groups: the mapping describes one group
    layer = Layer("tiny", N=draw(st.sampled_from([1, 2])), K=g * draw(st.sampled_from([1, 2, 4])),
                  C=g * draw(st.sampled_from([1, 2, 3])), G=g, P=draw(st.sampled_from([1, 2, 3])),
                  Q=draw(st.sampled_from([1, 2])), R=draw(st.sampled_from([1, 2, 3])),
                  S=draw(st.sampled_from([1, 2])), Wstride=draw(st.sampled_from([1, 2])),
                  Hstride=draw(st.sampled_from([1, 2])))
    levels = draw(st.sampled_from([2, 3]))
    mesh = draw(st.sampled_from([(2, 1), (1, 2), (2, 2), (4, 1)]))
    arch = tiny_arch(levels, mesh, glb_words=draw(st.sampled_from([16, 64, 1024])),
                     rf_words=draw(st.sampled_from([4, 8, 64])), glb_bw=draw(st.sampled_from([None, 2.0])))
    assume(brute_force_size(layer, arch, stop_above=limit) <= limit)
    return layer, arch


def _brute_values(layer, arch, objective):
    energy, cycles, arrays = brute_force(layer, arch)
    values = np.where(np.isfinite(energy), objective_of(objective, energy, cycles, arch.clock_GHz), np.inf)
    return values, energy, cycles, arrays


@settings(max_examples=25, **SETTINGS)
@given(cases(), st.sampled_from(OBJECTIVES))
def test_pruned_search_finds_the_brute_force_optimum(case, objective):
    layer, arch = case
    values, *_ = _brute_values(layer, arch, objective)
    result = map_layer(layer, arch, objective, seed_samples=8)
    cert = result.certificate
    assert cert.optimal
    assert cert.best == pytest.approx(values.min(), rel=1e-8)
    assert cert.lower_bound == cert.best and cert.gap == 0.0
    assert cert.evaluated + sum(cert.pruned.values()) == cert.mapspace
    ev = evaluate_batch(layer, arch, encode(result.mapping))
    assert objective_of(objective, ev.energy_pJ, ev.cycles, arch.clock_GHz)[0] == pytest.approx(values.min(), rel=1e-8)


ONE_RULE = {
    "equivalent-orders": Rules(orders=True, spatial_orders=False, bound=False, symmetry=False),
    "equivalent-spatial-orders": Rules(orders=False, spatial_orders=True, bound=False, symmetry=False),
    "bound": Rules(orders=False, spatial_orders=False, bound=True, symmetry=False),
    "symmetric-xy": Rules(orders=False, spatial_orders=False, bound=False, symmetry=True),
}


@settings(max_examples=12, **SETTINGS)
@given(cases(limit=3000), st.sampled_from(OBJECTIVES), st.sampled_from(sorted(ONE_RULE)))
def test_each_rule_alone_keeps_the_optimum(case, objective, rule):
    layer, arch = case
    values, *_ = _brute_values(layer, arch, objective)
    result = map_layer(layer, arch, objective, rules=ONE_RULE[rule], seed_samples=0)
    assert result.certificate.optimal
    assert result.certificate.best == pytest.approx(values.min(), rel=1e-8)


def test_no_rule_scores_every_mapping_of_the_brute_force():
    layer = Layer("t", N=1, K=2, C=2, P=2, Q=1, R=2, S=1)
    arch = tiny_arch(2, (2, 1))
    values, *_ = _brute_values(layer, arch, Objective.EDP)
    result = map_layer(layer, arch, Objective.EDP, rules=Rules(False, False, False, False), seed_samples=0)
    assert result.certificate.evaluated == len(values)  # brute force: active-loop permutations, all the rest
    assert result.certificate.best == pytest.approx(values.min(), rel=1e-8)


@settings(max_examples=20, **SETTINGS)
@given(cases(limit=4000), st.data())
def test_bounds_never_exceed_any_mappings_cost(case, data):
    """Complete and partial tilings: the bound is below the energy and cycles of every mapping."""
    layer, arch = case
    _, energy, cycles, arrays = _brute_values(layer, arch, Objective.EDP)
    ok = np.isfinite(energy)
    assume(ok.any())
    bm = BoundModel(layer, arch)
    assigned = np.array(data.draw(st.lists(st.booleans(), min_size=N_DIMS, max_size=N_DIMS)))
    free = ~assigned
    t, sx, sy = arrays.temporal.copy(), arrays.spatial_x.copy(), arrays.spatial_y.copy()
    t[:, :, free], sx[:, :, free], sy[:, :, free] = 1, 1, 1
    b = bm.bounds(t, sx, sy, assigned)
    assert (b.energy_pJ[ok] <= energy[ok]).all()
    assert (b.cycles[ok] <= cycles[ok]).all()
    full = bm.bounds(arrays.temporal, arrays.spatial_x, arrays.spatial_y, np.ones(N_DIMS, dtype=bool))
    assert (full.energy_pJ[ok] <= energy[ok]).all() and (full.cycles[ok] <= cycles[ok]).all()


@settings(max_examples=10, **SETTINGS)
@given(cases(limit=4000), st.sampled_from(OBJECTIVES))
def test_time_limited_certificate_is_valid(case, objective):
    layer, arch = case
    values, *_ = _brute_values(layer, arch, objective)
    result = map_layer(layer, arch, objective, time_limit_s=0.0, seed_samples=4)
    cert = result.certificate
    if not cert.optimal:
        assert cert.lower_bound <= values.min() * (1 + 1e-12)
        assert cert.remaining > 0
        assert cert.gap == pytest.approx(cert.best / cert.lower_bound - 1) if cert.lower_bound > 0 else True
    assert cert.best >= values.min() * (1 - 1e-12)


def _canonical(order_row: np.ndarray, temporal_row: np.ndarray, windowed) -> np.ndarray:
    """Each level's permutation replaced by its class representative (level_orders)."""
    out = order_row.copy()
    for l in range(order_row.shape[0]):
        active = tuple(int(d) for d in order_row[l] if temporal_row[l, d] > 1)
        reps = level_orders(tuple(sorted(active)), windowed)
        key = order_key(active, windowed)
        match = [r for r in reps if order_key(tuple(int(d) for d in r if temporal_row[l, d] > 1), windowed) == key]
        assert len(match) == 1
        out[l] = match[0]
    return out


@pytest.mark.parametrize("layer", [
    Layer("conv", N=1, C=8, K=8, P=6, Q=6, R=3, S=3),
    Layer("conv_s2", N=2, C=4, K=8, P=4, Q=4, R=3, S=3, Wstride=2, Hstride=2),
    Layer("wide", N=1, C=6, K=4, P=8, Q=1, R=3, S=1),
    Layer("pw", N=2, C=8, K=8, P=4, Q=4, Wstride=2, Hstride=2),
])
@pytest.mark.parametrize("arch_name", ["simple", "eyeriss-like", "fanout-into-macs"])
def test_order_classes_give_identical_counts(layer, arch_name):
    """Rules 1 and 2 of search.mapper.orders: a mapping and its class representative agree exactly
    (also with links into the MACs: a 4x4 fanout on the last storage level)."""
    from formulation.specs.catalog import load_arch

    arch = tiny_arch(2, (4, 4), glb_words=4096) if arch_name == "fanout-into-macs" else load_arch(arch_name)
    arrays = sample_mappings(layer, arch, 400, np.random.default_rng(7))
    windowed = windowed_axes(layer)
    canon = np.stack([_canonical(arrays.order[i], arrays.temporal[i], windowed) for i in range(arrays.size)])
    moved = MappingArrays(arrays.temporal, arrays.spatial_x, arrays.spatial_y, canon, arrays.keep)
    a, b = evaluate_batch(layer, arch, arrays), evaluate_batch(layer, arch, moved)
    assert (canon != arrays.order).any()
    for name in ("reads", "fills", "updates", "cycles", "energy_pJ"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_mapspace_size_counts_every_tiling():
    layer = Layer("t", N=1, K=4, C=2, P=2, Q=1, R=2, S=1)
    arch = tiny_arch(3, (2, 2))
    space = Space(layer, arch)
    direct = brute_force_size(layer, arch)
    # brute_force_size counts active-loop permutations; the mapspace counts all 7! per level
    assert space.size() >= direct
    result = map_layer(layer, arch, Objective.ENERGY, seed_samples=0)
    assert result.certificate.evaluated + sum(result.certificate.pruned.values()) == space.size()
    assert math.factorial(7) ** 3 * space.keep_combinations * space.tilings_weighted() == space.size()


@given(st.integers(1, 400), st.integers(0, 5))
@settings(max_examples=60, deadline=None)
def test_the_factorization_count_is_the_length_of_the_list(n, parts):
    assert ordered_factorization_count(n, parts) == len(ordered_factorizations(n, parts))


def test_hardness_bounds_the_tilings_and_a_process_builds_each_space_once():
    """``hardness`` counts every factor placement, the fanout limits left out: at least the tilings
    (``Space.options`` combined), and ``space_for`` gives the same space for equal layers and architectures."""
    layer = Layer("t", N=1, K=4, C=2, P=2, Q=1, R=2, S=1)
    arch = tiny_arch(3, (2, 2))
    space = Space(layer, arch)
    assert space.hardness() >= math.prod(o.count for o in space.options) > 0
    assert space_for(layer, arch) is space_for(Layer(**{**layer.__dict__}), tiny_arch(3, (2, 2)))
    assert space_for(layer, arch).size() == space.size()


def test_ctrl_c_keeps_the_best_mapping_and_a_valid_bound(monkeypatch):
    """An interrupted search reports the best so far and the root's bound (below every mapping)."""
    import search.mapper.mapper as mm

    layer = Layer("t", N=1, K=2, C=2, P=2, Q=1, R=2, S=1)
    arch = tiny_arch(3, (2, 2))
    values, *_ = _brute_values(layer, arch, Objective.EDP)

    def interrupt(self, tick=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(mm._Search, "run", interrupt)
    result = map_layer(layer, arch, Objective.EDP, seed_samples=8)
    cert = result.certificate
    assert result.status.value == "interrupted" and not cert.optimal
    assert result.mapping is not None and cert.best >= values.min() * (1 - 1e-12)
    assert cert.lower_bound <= values.min()
    assert cert.evaluated + sum(cert.pruned.values()) + cert.remaining == cert.mapspace


@settings(max_examples=10, **SETTINGS)
@given(cases(limit=3000))
def test_front_mode_proves_the_energy_latency_front(case):
    layer, arch = case
    _, energy, cycles, _ = _brute_values(layer, arch, Objective.EDP)
    ok = np.isfinite(energy)
    assume(ok.any())
    points = sorted(set(zip(energy[ok].tolist(), cycles[ok].tolist())), key=lambda p: (p[1], p[0]))
    front, best_e = [], math.inf
    for e, c in points:
        if e < best_e * (1 - 1e-9):
            front.append((e, c))
            best_e = e
    result = map_layer(layer, arch, Objective.EDP, seed_samples=8, front=True)
    assert result.certificate.optimal
    got = sorted(result.pareto, key=lambda p: (p[1], p[0]))
    assert [c for _, c in got] == [c for _, c in front]
    np.testing.assert_allclose([e for e, _ in got], [e for e, _ in front], rtol=1e-8)
