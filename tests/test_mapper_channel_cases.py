"""The placement of a free C's loops (search.mapper.channel_cases) against brute force on a shrunk
eyeriss-like: per mapping, at its own split and keep combination, and for the partial tilings' bounds."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

import search.mapper.channel_cases as channel_cases
from formulation.axes import N_DIMS, N_TENSORS, Dim
from formulation.specs.types import Layer
from search.mapper.bounds import BoundModel
from search.mapper.channel_cases import channel_case_excess, eligible_rows
from search.mapper.leaves import LeafExpander, Rules
from search.mapper.pair_terms import tensor_costs
from search.mapper.space import Space
from tests.mapper_cases import brute_force, tiny_eyeriss
from tests.test_mapper_capacity import bounds_with_and_without

LAYER = Layer("conv", N=1, C=4, K=2, P=2, Q=1, R=2)
ARCH = tiny_eyeriss(mesh=(2, 1), glb_words=8, ifmap_words=2, psum_words=2)


@lru_cache(maxsize=1)
def _brute():
    """Every mapping of ``LAYER`` on ``ARCH`` (brute force, once per session)."""
    return brute_force(LAYER, ARCH)


def own_split_energy(layer, arch, arrays, free, excess=channel_case_excess):
    """Per mapping of ``arrays`` whose partial tiling (``free`` at 1) the claim covers: the chain sum of
    its own keep combination priced at its own split, and that plus the term's excess there."""
    space = Space(layer, arch)
    bm = BoundModel(layer, arch, space)
    oe = LeafExpander(space, Rules(), bm).order_energy
    t, sx, sy = arrays.temporal.copy(), arrays.spatial_x.copy(), arrays.spatial_y.copy()
    t[:, :, free], sx[:, :, free], sy[:, :, free] = 1, 1, 1
    batch = bm.batch(t, sx, sy)
    table = bm.split_table(free)
    splits = table.for_rows(batch.capx, batch.capy)
    keeps = np.arange(len(oe.keep_table))
    own_keep = (arrays.keep[:, None] == oe.keep_table[None]).all(axis=(2, 3)).argmax(axis=1)
    # the mapping's own placement vector: z of the free dimensions, and their X / Y products per fanout
    fl = bm.fan_levels
    z = np.where(free[None], (arrays.spatial_x * arrays.spatial_y)[:, fl].prod(axis=1), 1)
    px = np.where(free[None, None], arrays.spatial_x[:, fl], 1).prod(axis=2)
    py = np.where(free[None, None], arrays.spatial_y[:, fl], 1).prod(axis=2)
    own = np.concatenate([z, px, py], axis=1)
    table_rows = np.concatenate([table.z, table.px, table.py], axis=1)
    row = (own[:, None] == table_rows[None]).all(axis=2).argmax(axis=1)
    j = (table.split_of_row[row][:, None] == splits.index[None]).argmax(axis=1)
    total = np.zeros(len(t))
    for tt in range(N_TENSORS):
        cost, _, _ = tensor_costs(bm, tt, batch, free, splits.keys[tt])
        pairs = [oe.chain_pairs[tt][i] for i in oe.chain_index[own_keep, tt]]
        key = splits.key[j, tt]
        total += np.array([sum(cost[b, key[b], p, c] for p, c in pairs[b]) for b in range(len(t))]) * layer.G
    more = excess(oe, batch, free, keeps, table, splits)
    extra = np.zeros(len(t)) if more is None else more[np.arange(len(t)), j, own_keep]
    rows = eligible_rows(bm, t, free)
    return (np.zeros(len(t), dtype=bool) if rows is None else rows), total, total + extra


def test_the_channel_cases_stay_below_each_mapping_at_its_own_split_and_keep_combination():
    """C free, K looping in DRAM: every mapping costs at least its own split's chain sum plus the
    term's excess at its own keep combination, and the excess is positive for some. (Checked when
    written: taking the larger of the two excesses instead of the least, never allowing case 3,
    doubling the excess or doubling ``c_min`` each put the bound above some mapping here.)"""
    energy, _, arrays = _brute()
    ok = np.isfinite(energy)
    free = np.zeros(N_DIMS, dtype=bool)
    free[Dim.C] = True
    rows, plain, raised = own_split_energy(LAYER, ARCH, arrays.take(np.flatnonzero(ok)), free)
    e = energy[ok] - LAYER.macs * ARCH.mac.energy_pJ
    assert rows.any()
    assert (plain <= e * (1 + 1e-9)).all()
    assert (raised <= e * (1 + 1e-9)).all()
    assert (raised[rows] > plain[rows] * 1.01).any()


def test_the_channel_cases_raise_partial_tilings_and_stay_below_every_completion():
    """The partial tilings' energy and EDP bounds rise with the term and stay at most every legal
    completion's."""
    (energy, cycles, ok), (e, d), (_, d_old) = bounds_with_and_without(LAYER, ARCH, [Dim.C], channel_cases,
                                                                       "CHANNEL_CASES")
    assert (e[ok] <= energy[ok] * (1 + 1e-9)).all()
    assert (d[ok] <= energy[ok] * cycles[ok] * (1 + 1e-9)).all()
    assert (d >= d_old * (1 - 1e-12)).all()
    assert (d > d_old * 1.05).any()
