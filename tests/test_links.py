"""Link transfers (:mod:`formulation.model.links`) against Timeloop v3.0.3 and against a literal replay.

* The four reference cases tagged ``link_transfers`` (public-0043, 0054, 0072, 0167) give
  Timeloop's reads, fills and updates exactly, and the link words equal the network's
  ``link_transfers``; every other reference case gets no correction at all.
* The closed form (pairs of consecutive step types, see the module docstring) equals a literal
  replay of Timeloop's walk (:func:`replay`: every leaf of the #0/#1 walk, box deltas with
  reset-on-stride-change, every child and every mesh neighbour) on random mappings.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest

from formulation.axes import DIMS, N_DIMS, TENSOR_NAMES, TENSORS, Dim, Tensor, projection
from formulation.model.encoding import MappingArrays, decode, encode
from formulation.model.links import LinkCorrections, link_transfers, spatial_orders
from formulation.model.exact import access_counts, evaluate_batch
from formulation.model.nest import build_nest
from formulation.specs.types import Architecture, Layer, LevelMapping, Mapping

LINK_CASES = ("public-0043", "public-0054", "public-0072", "public-0167")


@dataclass(frozen=True)
class OrderedArrays(MappingArrays):
    """Mapping arrays that also carry the spatial loop order (``links`` reads ``spatial_order``)."""

    spatial_order: np.ndarray | None = None


def ordered(mappings) -> OrderedArrays:
    a = encode(mappings)
    return OrderedArrays(a.temporal, a.spatial_x, a.spatial_y, a.order, a.keep, spatial_orders(mappings))


def corrections(layer, arch, arrays):
    nest = build_nest(arrays)
    reads = np.zeros((arrays.size, len(arch.levels), len(TENSORS)), dtype=np.int64)
    return link_transfers(layer, arch, arrays, nest, reads)


# --------------------------------------------------------------------------------------------
# Literal replay of nest-analysis.cpp for one fanout (the oracle)
# --------------------------------------------------------------------------------------------

def _box_delta(x, prev, prev_translation, extent):
    """``SaveAndSubtractIfSameStride`` on boxes of one shape: (delta (low, shape) or None, translation)."""
    translation = None if prev is None else tuple(int(v) for v in x - prev)

    def subtract():
        if prev is None:
            return x.copy(), extent.copy()
        move = np.array(translation)
        if (np.abs(move) >= extent).any():
            return x.copy(), extent.copy()       # no overlap: the whole tile
        moving = np.flatnonzero(move)
        if len(moving) == 0:
            return None                           # same tile: nothing new
        if len(moving) > 1:
            return x.copy(), extent.copy()       # AAHR cannot subtract an L shape: whole tile
        a = moving[0]
        low, shape = x.copy(), extent.copy()
        if move[a] > 0:
            low[a] = x[a] + extent[a] - move[a]
        shape[a] = abs(move[a])
        return low, shape

    if prev_translation is None:
        return subtract(), translation
    if translation == prev_translation:
        return subtract(), prev_translation
    return (x.copy(), extent.copy()), None       # stride changed: refetch, forget the translation


def replay(layer: Layer, arch: Architecture, mapping: Mapping, m: int, t: Tensor) -> tuple[int, int]:
    """``(R, L)`` per instance of level ``m``: parent words saved and link words below its fanout.

    Walks all ``2^n`` leaves of the #0/#1 walk over the temporal loops of levels ``0..m`` (outer
    first), keeps child 0's delta box with reset-on-stride-change, translates it to every child,
    and applies ``ComputeNetworkLinkTransfers`` and the with/without comparison at each leaf.
    """
    proj = projection(layer.Wstride, layer.Hstride, layer.Wdilation, layer.Hdilation)[t]
    levels = mapping.levels

    def extent(level: int, d: int) -> int:  # e_{level, d}: everything at and below ``level``
        return int(np.prod([lm.temporal[d] * lm.spatial[d] for lm in levels[level:]]))

    loops = []  # (bound, shift) of the temporal loops above the fanout's children, outer first
    for lvl in range(m + 1):
        lm = levels[lvl]
        for d in reversed(lm.permutation):
            if lm.temporal[d] > 1:
                loops.append((lm.temporal[d], proj[:, d] * extent(lvl + 1, d) * lm.spatial[d]))
    box = 1 + sum(proj[:, d] * (extent(m + 1, d) - 1) for d in range(N_DIMS))
    lm = levels[m]
    xs = [d for d in lm.spatial_order if lm.spatial_x[d] > 1]
    ys = [d for d in lm.spatial_order if lm.spatial_y[d] > 1]
    digits = [(lm.spatial_x[d], proj[:, d] * extent(m + 1, d)) for d in xs]
    digits += [(lm.spatial_y[d], proj[:, d] * extent(m + 1, d)) for d in ys]
    n = int(np.prod([c for c, _ in digits]))
    tau = np.zeros((n, 4), dtype=np.int64)
    for cid in range(n):
        rest = cid
        for count, step in digits:
            tau[cid] += (rest % count) * step
            rest //= count
    fx, fy = arch.fanout(m)
    h_size = max(fx, int(np.prod([lm.spatial_x[d] for d in xs])))
    v_size = max(fy, int(np.prod([lm.spatial_y[d] for d in ys])))
    pairs = []  # (receiver, sender) neighbours on the mesh
    for cid in range(n):
        h, v = cid % h_size, cid // h_size
        for dh, dv in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            if 0 <= h + dh < h_size and 0 <= v + dv < v_size and (v + dv) * h_size + h + dh < n:
                pairs.append((cid, (v + dv) * h_size + h + dh))
    recv = np.array([p[0] for p in pairs], dtype=np.int64).reshape(-1)
    send = np.array([p[1] for p in pairs], dtype=np.int64).reshape(-1)
    distinct = len({tuple(v) for v in tau})
    state = {"prev": None, "translation": None, "prev_delta": None}
    total = {"R": 0, "L": 0}

    def leaf(low, weight):
        delta, state["translation"] = _box_delta(low, state["prev"], state["translation"], box)
        state["prev"] = low.copy()
        prev_delta, state["prev_delta"] = state["prev_delta"], delta
        if delta is None or prev_delta is None or len(recv) == 0:
            return
        if not np.array_equal(delta[1], prev_delta[1]):
            return
        # child c's delta is delta + tau[c]; it equals sender s's previous delta prev + tau[s]
        hit = ((delta[0] + tau[recv]) == (prev_delta[0] + tau[send])).all(axis=1)
        flagged = np.zeros(n, dtype=bool)
        flagged[recv[hit]] = True
        rest = len({tuple(v) for v in tau[~flagged]})
        if rest < distinct:
            size = int(np.prod(delta[1]))
            total["R"] += (distinct - rest) * size * weight
            total["L"] += int(flagged.sum()) * size * weight

    def walk(j, low, weight):
        if j == len(loops):
            leaf(low, weight)
            return
        bound, shift = loops[j]
        walk(j + 1, low, weight)
        walk(j + 1, low + shift, weight * (bound - 1))

    walk(0, np.zeros(4, dtype=np.int64), 1)
    return total["R"], total["L"]


# --------------------------------------------------------------------------------------------
# Random mappings (any spatial order, any bypass), built directly as Mapping objects
# --------------------------------------------------------------------------------------------

def _primes(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out + ([n] if n > 1 else [])


def random_mapping(layer: Layer, arch: Architecture, rng: np.random.Generator, bias: float = 0.6) -> Mapping:
    """Factors split at random over levels and mesh axes (``bias`` pulls them onto the mesh)."""
    levels = len(arch.levels)
    temporal = np.ones((levels, N_DIMS), dtype=np.int64)
    sx = np.ones((levels, N_DIMS), dtype=np.int64)
    sy = np.ones((levels, N_DIMS), dtype=np.int64)
    fan = [arch.fanout(l) for l in range(levels)]
    for d in rng.permutation(N_DIMS):
        for p in _primes(layer.dims[d]):
            l = int(rng.integers(levels))
            fx, fy = fan[l]
            roll = rng.random()
            if roll < bias / 2 and sy[l, d] == 1 and sx[l].prod() * p <= fx:
                sx[l, d] *= p
            elif roll < bias and sx[l, d] == 1 and sy[l].prod() * p <= fy:
                sy[l, d] *= p
            else:
                temporal[l, d] *= p
    out = []
    for l, lv in enumerate(arch.levels):
        spatial_dims = [Dim(int(d)) for d in rng.permutation(N_DIMS) if sx[l, d] * sy[l, d] > 1]
        x_dims = [d for d in spatial_dims if sx[l, d] > 1]
        y_dims = [d for d in spatial_dims if sy[l, d] > 1]
        rest = [d for d in DIMS if d not in spatial_dims]
        keep = frozenset(TENSORS) if l == 0 else frozenset(t for t in TENSORS if rng.random() < 0.8)
        out.append(LevelMapping(target=lv.name, temporal=tuple(int(v) for v in temporal[l]),
                                permutation=tuple(Dim(int(d)) for d in rng.permutation(N_DIMS)),
                                spatial_x=tuple(int(v) for v in sx[l]), spatial_y=tuple(int(v) for v in sy[l]),
                                keep=keep, spatial_order=tuple(x_dims + y_dims + rest)))
    return Mapping(levels=tuple(out))


# --------------------------------------------------------------------------------------------
# Reference cases
# --------------------------------------------------------------------------------------------

def _by_id(reference_cases):
    return {c.id: c for c in reference_cases}


@pytest.mark.parametrize("case_id", LINK_CASES)
def test_link_cases_match_timeloop(reference_cases, case_id):
    case = _by_id(reference_cases)[case_id]
    ev = evaluate_batch(case.layer, case.arch, ordered(case.mapping))
    ref = case.reference
    for l, lv in enumerate(case.arch.levels):
        for t in TENSORS:
            ref_t = ref["levels"][lv.name]["tensors"].get(TENSOR_NAMES[t])
            if ref_t is None:
                continue
            for key in ("reads", "fills", "updates"):
                assert int(getattr(ev, key)[0, l, t]) == ref_t[key], (lv.name, TENSOR_NAMES[t], key)
    assert int(ev.cycles[0]) == ref["cycles"]
    assert float(ev.energy_pJ[0]) == pytest.approx(ref["energy_pJ"], rel=1e-9)
    corr = corrections(case.layer, case.arch, ordered(case.mapping))
    for m in range(len(case.arch.levels) - 1):
        name = f"{case.arch.levels[m].name} <==> {case.arch.levels[m + 1].name}"
        for t in TENSORS:
            assert int(corr.transfers[0, m, t]) == ref["networks"][name][TENSOR_NAMES[t]]["link_transfers"]


def test_link_case_counts(reference_cases):
    """The Inputs counts of the four cases, spelled out (reads at GlobalBuffer and RegisterFile)."""
    expected = {  # case: (GLB reads, RF reads, RF fills, link words)
        "public-0043": (12386304, 148635648, 57802752, 33030144),
        "public-0054": (3840, 84480, 18432, 10752),
        "public-0072": (5120, 161792, 24576, 14336),
        "public-0167": (2052, 5904, 9072, 864),
    }
    cases = _by_id(reference_cases)
    for case_id, (glb, rf, rf_fills, words) in expected.items():
        case = cases[case_id]
        ev = evaluate_batch(case.layer, case.arch, ordered(case.mapping))
        assert (ev.reads[0, 1, Tensor.I], ev.reads[0, 2, Tensor.I], ev.fills[0, 2, Tensor.I]) == (glb, rf, rf_fills)
        assert corrections(case.layer, case.arch, ordered(case.mapping)).transfers[0, 1, Tensor.I] == words


def test_other_cases_unaffected(reference_cases):
    """No correction (and no Timeloop link transfer) anywhere else; batched per (layer, arch)."""
    groups: dict = {}
    for case in reference_cases:
        groups.setdefault((case.layer, case.arch), []).append(case)
    seen = 0
    for (layer, arch), cases in groups.items():
        corr = corrections(layer, arch, ordered([c.mapping for c in cases]))
        for i, case in enumerate(cases):
            linked = case.id in LINK_CASES
            assert bool(corr.reads[i].any()) == linked, case.id
            assert not corr.fills[i].any(), case.id
            reported = sum(v[t]["link_transfers"] for v in case.reference["networks"].values() for t in v)
            assert int(corr.transfers[i].sum()) == reported, case.id
            seen += 1
    assert seen == len(reference_cases)


def test_hook_is_exact_on_reference_counts(reference_cases):
    """``access_counts`` with the hook equals Timeloop on every case's reads/fills/updates."""
    for case in reference_cases:
        counts = access_counts(case.layer, case.arch, ordered(case.mapping))
        for l, lv in enumerate(case.arch.levels):
            for t in TENSORS:
                ref_t = case.reference["levels"][lv.name]["tensors"].get(TENSOR_NAMES[t])
                if ref_t is None:
                    continue
                for key in ("reads", "fills", "updates"):
                    assert int(counts[key][0, l, t]) == ref_t[key], (case.id, lv.name, key)


def _plain(mappings) -> MappingArrays:
    """Arrays without a spatial order (what :func:`encode` gives today)."""
    a = encode(mappings)
    return MappingArrays(a.temporal, a.spatial_x, a.spatial_y, a.order, a.keep)


def test_spatial_order_decides_neighbours(reference_cases):
    """public-0054 links only with its own spatial order (Q,C on X; P,K on Y), not the canonical one."""
    case = _by_id(reference_cases)["public-0054"]
    with_order = corrections(case.layer, case.arch, ordered(case.mapping))
    canonical = corrections(case.layer, case.arch, _plain(case.mapping))
    assert with_order.transfers[0, 1, Tensor.I] == 10752
    assert not canonical.transfers.any()


def test_default_order_is_decode_order(reference_cases):
    """Arrays without ``spatial_order`` mean the order :func:`decode` writes (X then Y, ``Dim`` order)."""
    case = _by_id(reference_cases)["public-0043"]
    arrays = _plain(case.mapping)
    implicit = corrections(case.layer, case.arch, arrays)
    explicit = corrections(case.layer, case.arch, ordered(decode(arrays, case.arch)))
    assert np.array_equal(implicit.reads, explicit.reads) and implicit.reads.any()


# --------------------------------------------------------------------------------------------
# Closed form against the literal replay
# --------------------------------------------------------------------------------------------

LAYERS = [
    Layer(name="square", N=1, C=4, K=4, P=8, Q=6, R=3, S=3),
    Layer(name="wstride", N=2, C=2, K=4, P=6, Q=6, R=3, S=2, Wstride=2),
    Layer(name="hstride", N=1, C=6, K=8, P=7, Q=5, R=3, S=1, Hstride=2),
    Layer(name="dilated", N=1, C=2, K=4, P=8, Q=4, R=5, S=3, Wdilation=2),
    Layer(name="wide", N=1, C=8, K=16, P=8, Q=8, R=3, S=3),
]
ARCH_NAMES = ["simple-8x8-bwlimited", "simple-16x16", "eyeriss-like-12x14"]


def _arch(reference_cases, name: str) -> Architecture:
    return next(c.arch for c in reference_cases if c.arch.name == name)


@pytest.mark.parametrize("arch_name", ARCH_NAMES)
def test_closed_form_equals_replay(reference_cases, arch_name):
    """Per fanout and tensor: ``saved`` and link words per parent instance equal the replay's."""
    arch = _arch(reference_cases, arch_name)
    rng = np.random.default_rng(sum(map(ord, arch_name)))
    found = checked = 0
    for layer in LAYERS:
        mappings = [random_mapping(layer, arch, rng, bias=0.8) for _ in range(120)]
        arrays = ordered(mappings)
        corr = corrections(layer, arch, arrays)
        nest = build_nest(arrays)
        for i, mapping in enumerate(mappings):
            for m in range(len(arch.levels) - 1):
                if np.prod(mapping.levels[m].spatial) == 1:
                    assert not corr.transfers[i, m].any()
                    continue
                for t in TENSORS:
                    if t not in mapping.levels[m + 1].keep or t != Tensor.I:
                        assert corr.transfers[i, m, t] == 0   # restricted to kept children; only Inputs link
                        continue
                    saved, words = replay(layer, arch, mapping, m, t)
                    n_m = int(nest.instances[i, m])
                    assert (int(corr.saved[i, m, t]), int(corr.transfers[i, m, t]) // n_m) == (saved, words), \
                        (layer.name, i, m, t)
                    checked += 1
                    found += words > 0
    assert checked > 300 and found >= 10, (checked, found)


def test_bookkeeping_in_access_counts(reference_cases, monkeypatch):
    """With the hook, reads move from the parent (``n_m R``) to the child (the link words, rounded
    per instance); fills and updates do not change (one parent instance). A parent that bypasses
    Inputs passes the saving on to the nearest level above that keeps them (DRAM here, no fanout
    in between)."""
    import formulation.model.exact as model

    arch = _arch(reference_cases, "simple-16x16")
    rng = np.random.default_rng(3)
    layer = LAYERS[4]
    mappings = [random_mapping(layer, arch, rng, bias=0.8) for _ in range(400)]
    arrays = ordered(mappings)
    corr = corrections(layer, arch, arrays)
    with_links = access_counts(layer, arch, arrays)
    monkeypatch.setattr(model, "link_transfers", _no_links)
    without = access_counts(layer, arch, arrays)
    reads = with_links["reads"] - without["reads"]
    assert np.array_equal(with_links["fills"], without["fills"])
    assert np.array_equal(with_links["updates"], without["updates"])
    linked = corr.transfers[:, 1, Tensor.I] > 0
    assert linked.sum() >= 5 and (~linked).sum() > 100
    assert not reads[~linked].any()
    by_parent = 0
    nest = build_nest(arrays)
    for i in np.flatnonzero(linked):
        n_c = int(nest.instances[i, 2])
        words = int(corr.transfers[i, 1, Tensor.I])
        assert reads[i, 2, Tensor.I] == n_c * ((2 * words + n_c) // (2 * n_c))  # n_c std::round(L / n_c)
        keeper = 1 if Tensor.I in mappings[i].levels[1].keep else 0
        by_parent += keeper == 0
        assert reads[i, keeper, Tensor.I] == -corr.saved[i, 1, Tensor.I]
        assert not np.delete(reads[i], [keeper, 2], axis=0).any()
    assert by_parent >= 1


def _no_links(layer, arch, arrays, nest, reads, **kwargs):
    zero = np.zeros_like(reads)
    return LinkCorrections(zero, zero, zero, zero, zero, np.zeros(0, dtype=np.int64))


def test_only_inputs_link(reference_cases):
    """Weights and Outputs have no sliding-window axis: the replay never finds a link for them."""
    arch = _arch(reference_cases, "simple-8x8-bwlimited")
    rng = np.random.default_rng(7)
    for layer, _ in itertools.product(LAYERS[:2], range(15)):
        mapping = random_mapping(layer, arch, rng)
        for m in range(len(arch.levels) - 1):
            if np.prod(mapping.levels[m].spatial) > 1:
                for t in (Tensor.W, Tensor.O):
                    assert replay(layer, arch, mapping, m, t) == (0, 0)
