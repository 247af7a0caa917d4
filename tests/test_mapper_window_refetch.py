"""The windowed input's order refetch (search.mapper.window_refetch) against brute force on a shrunk
eyeriss-like (the random windowed cases of tests/test_mapper_capacity.py cover it too)."""

from __future__ import annotations

import numpy as np

import search.mapper.window_refetch as window_refetch
from formulation.axes import N_DIMS, Dim
from formulation.specs.types import Layer
from search.mapper.order_classes import prefix_classes
from tests.mapper_cases import tiny_eyeriss
from tests.test_mapper_capacity import bounds_with_and_without


def test_the_order_refetch_raises_partial_tilings_and_stays_below_every_completion():
    """A 1-D convolution with P and R free, K and C assigned: where K and C both loop in DRAM, either
    K encloses C and refetches the inputs (kept in a 2-word scratchpad) or C encloses K and
    refetches the Outputs; the partial tilings' energy and EDP bounds rise with the term, and stay
    at most every legal completion's."""
    layer, arch = Layer("conv", N=1, C=2, K=2, P=2, Q=1, R=2), tiny_eyeriss(glb_words=4, ifmap_words=2)
    (energy, cycles, ok), (e, d), (e_old, d_old) = bounds_with_and_without(layer, arch, [Dim.P, Dim.R],
                                                                           window_refetch, "WINDOW_REFETCH")
    assert (e[ok] <= energy[ok] * (1 + 1e-9)).all()
    assert (d[ok] <= energy[ok] * cycles[ok] * (1 + 1e-9)).all()
    assert (e > e_old * 1.01).any() and (d > d_old * 1.01).any()


def test_k_outside_charges_k_exactly_when_it_encloses_the_inputs_channel_loop():
    """With K and C active at a level, the orders whose input prefix (the loops inside the innermost C
    loop) holds K get 1, the others K's factor; a level without an active K loop gets 1 everywhere."""
    windowed = (True, False)
    t = np.ones((2, 2, N_DIMS), dtype=np.int64)
    t[0, 0, Dim.K], t[0, 0, Dim.C] = 4, 2
    t[1, 0, Dim.C], t[1, 0, Dim.P] = 2, 3
    out = window_refetch.k_outside(t, lambda a: prefix_classes(a, windowed), 0)
    masks = prefix_classes((int(Dim.K), int(Dim.C)), windowed)
    n = len(masks)
    assert set(out[0, :n].tolist()) == {1.0, 4.0}
    assert (out[0, :n] == np.where(masks[:, 1, Dim.K], 1.0, 4.0)).all()
    assert (out[1] == 1.0).all()
