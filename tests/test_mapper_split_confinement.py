"""The confinement rule per split of the free fanout (search.mapper.confinement.split_confinement) against
brute force on a shrunk eyeriss-like."""

from __future__ import annotations

import time
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import search.mapper.confinement as confinement
import search.mapper.partial_orders as partial_orders
from formulation.axes import N_DIMS, Dim
from formulation.specs.types import Layer
from search.mapper.splits import SplitTable
from search.mapper.space import Space
from search.mapper.bounds import BoundModel
from tests.mapper_cases import brute_force, tiny_eyeriss
from tests.test_mapper_capacity import _bounds, bounds_with_and_without


def test_the_per_split_confinement_raises_partial_tilings_and_stays_below_every_completion():
    """A 1-D convolution with C and P free on two PEs with 2-word weight scratchpads: C and R do not
    fit below the scratchpad together, so a split that leaves C's spatial factor at 1 confines C's
    loops above it, where the split-free rule let C take the whole fanout. The partial tilings'
    energy and EDP bounds rise with the term, and stay at most every legal completion's."""
    layer, arch = Layer("conv", N=1, C=2, K=1, P=4, Q=1, R=2), tiny_eyeriss(mesh=(2, 1), glb_words=8,
                                                                              weights_words=2)
    (energy, cycles, ok), (e, d), (_, d_old) = bounds_with_and_without(layer, arch, [Dim.C, Dim.P], confinement,
                                                                       "SPLIT_CONFINEMENT")
    assert (e[ok] <= energy[ok] * (1 + 1e-9)).all()
    assert (d[ok] <= energy[ok] * cycles[ok] * (1 + 1e-9)).all()
    assert (d >= d_old * (1 - 1e-12)).all()
    assert (d > d_old * 1.01).any()


@pytest.mark.parametrize("free_dims", [[Dim.C], [Dim.C, Dim.R], [Dim.P, Dim.R]])
def test_the_per_split_confinement_is_below_every_completion_of_a_tight_gemm(free_dims):
    """A GEMM on four PEs with 2-word weight scratchpads, where the bound of some partial tilings equals
    their best completion: pricing every split as if the confined dimensions had no spatial factor
    (``S = 1``) exceeds it there; the per-split term does not."""
    layer, arch = Layer("gemm", N=1, C=4, K=1, P=4, Q=1, R=1), tiny_eyeriss(mesh=(2, 2), glb_words=8,
                                                                              weights_words=2)
    energy, cycles, arrays = brute_force(layer, arch)
    ok = np.isfinite(energy)
    free = np.zeros(N_DIMS, dtype=bool)
    free[free_dims] = True
    _, (e, _, d), _ = _bounds(layer, arch, arrays, free)
    assert (e[ok] <= energy[ok] * (1 + 1e-9)).all()
    assert (d[ok] <= energy[ok] * cycles[ok] * (1 + 1e-9)).all()


def test_max_product_is_the_largest_product_over_each_splits_placements():
    """``SplitTable.max_product`` per split: the largest product of the chosen dimensions' ``z`` over
    the placement vectors of that split, and at least the product of each of them."""
    layer, arch = Layer("conv", N=1, C=4, K=2, P=4, Q=1, R=2), tiny_eyeriss(mesh=(2, 2))
    space = Space(layer, arch)
    bm = BoundModel(layer, arch, space)
    free = np.zeros(N_DIMS, dtype=bool)
    free[[Dim.C, Dim.K, Dim.R]] = True
    table = SplitTable.of(space, free, bm.rel, bm.window_pairs)
    dims = np.zeros(N_DIMS, dtype=bool)
    dims[[Dim.C, Dim.R]] = True
    got = table.max_product(dims)
    prod = table.z[:, Dim.C] * table.z[:, Dim.R]
    for j in range(len(table.total)):
        assert got[j] == prod[table.split_of_row == j].max()
    assert (got[table.split_of_row] >= prod).all()
    assert len(set(got.tolist())) > 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=60), st.integers(2, 6000), st.integers(1, 10))
def test_product_groups_only_raise_products_and_keep_at_most_the_group_count(values, limit, groups):
    """Grouping the splits' products (a larger ``S`` weakens the rule, so a raised product keeps the
    bound valid): every product below the limit is raised to one at least as large and still below
    the limit, every other is left out (``inf``), at most ``groups`` distinct values remain, and
    with no more distinct products than groups nothing changes."""
    prods = np.array(values, dtype=np.float64)
    got = confinement.product_groups(prods, limit, groups)
    below = prods < limit
    assert (np.isinf(got) == ~below).all()
    assert (got[below] >= prods[below]).all() and (got[below] < limit).all()
    assert len(np.unique(got[below])) <= groups
    assert set(got[below].tolist()) <= set(prods[below].tolist())
    if len(np.unique(prods[below])) <= groups:
        assert (got[below] == prods[below]).all()


def test_grouped_products_and_a_past_deadline_give_bounds_between_the_plain_and_the_full_rule():
    """On the first test's case: pricing every split with the largest product (one group) gives EDP
    bounds between those without the per-split term and those with every product; a deadline
    already past leaves out the optional terms (capacity, confinement, per split), giving exactly
    the bounds with those flags off."""
    layer, arch = Layer("conv", N=1, C=2, K=1, P=4, Q=1, R=2), tiny_eyeriss(mesh=(2, 1), glb_words=8,
                                                                              weights_words=2)
    energy, cycles, arrays = brute_force(layer, arch)
    free = np.zeros(N_DIMS, dtype=bool)
    free[[Dim.C, Dim.P]] = True
    _, (_, _, d), _ = _bounds(layer, arch, arrays, free)
    with patch.object(confinement, "SPLIT_CONFINEMENT", False):
        _, (_, _, d_old), _ = _bounds(layer, arch, arrays, free)
    with patch.object(confinement, "MAX_PRODUCT_GROUPS", 1):
        _, (_, _, d_one), _ = _bounds(layer, arch, arrays, free)
    assert (d_one >= d_old * (1 - 1e-12)).all() and (d_one <= d * (1 + 1e-12)).all()
    _, (e_late, c_late, d_late), _ = _bounds(layer, arch, arrays, free, deadline=time.monotonic() - 1)
    with patch.object(partial_orders, "SPLIT_KEEPS", False):
        _, (e_off, c_off, d_off), _ = _bounds(layer, arch, arrays, free, capacity=False, confinement=False)
    assert np.allclose(e_late, e_off, rtol=1e-12) and np.allclose(c_late, c_off, rtol=1e-12)
    assert np.allclose(d_late, d_off, rtol=1e-12)
    assert (d_late < d * (1 - 1e-3)).any()
