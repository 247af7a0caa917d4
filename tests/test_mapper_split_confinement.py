"""The confinement rule per split of the free fanout (search.mapper.confinement.split_confinement) against
brute force on a shrunk eyeriss-like."""

from __future__ import annotations

import numpy as np
import pytest

import search.mapper.confinement as confinement
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
